import { and, eq, inArray } from 'drizzle-orm'
import type { Core } from '../core.js'
import { lockRecords, recordKey } from '../db/locks.js'
import { toTidesyncError } from '../db/map-error.js'
import type { TidesyncTx } from '../db/types.js'
import { isRejection, type TidesyncError } from '../errors.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { buildFilter, type Filter } from '../model/scope.js'
import { insertsNewRow, stageChange } from './apply-change.js'
import { commitChanges } from './commit.js'
import { readCurrentMany, stateAfter } from './current-state.js'
import { type PendingRow, retryOnPendingChange } from './pending-writes.js'
import type { BatchItem, BatchOutcome, CurrentState, StagedChange } from './staged-change.js'

/**
 * Whether `item` can join a batch that already holds `keys` (records) and `ids` (change ids).
 * A change id twice goes to a later transaction (it then sees the first one's record); so does
 * a record written twice when its writes may be deferred outside the transaction (write buffer).
 */
export function fitsBatch(
  core: Core,
  item: BatchItem,
  keys: ReadonlySet<string>,
  ids: ReadonlySet<string>,
): boolean {
  if (ids.has(item.id)) return false
  const { model, uid } = item.req
  return !(keys.has(recordKey(model.name, uid)) && core.pending.defersWrites(model))
}

/**
 * Applies a batch of changes in **one transaction**, in order, and publishes them after the
 * commit: the entry of every write, a push's batches and a service call alike (a batch of
 * one). Per change, the outcome is what a transaction of its own would have given:
 *
 * - With a `clientId` (a push), the change ids are recorded first, in one statement (`ON
 *   CONFLICT DO NOTHING`): an id that is already there is a `duplicate` (applied by an earlier
 *   push) and is not applied again. A concurrent push of the same ids waits on those rows until
 *   this one commits. Without one (a service call) nothing is recorded.
 * - The records are locked in one statement (sorted keys), then read in two queries per model.
 * - A record changed twice in the batch is not read again: its second change starts from the
 *   row its first change wrote and the metadata it staged (metadata is stored once for all, at
 *   the end), exactly what a read would give.
 * - Revisions, metadata and change-log entries are written at the end, as for every write.
 *
 * A change refused for good (scope, `canWrite`, a constraint, `NOT_FOUND`) must roll back
 * alone. Why not a SAVEPOINT per change from the start: on PGlite every statement costs about
 * as much as the work of a change, and refusals are rare (malformed changes are rejected before
 * the batch). So the batch first runs without savepoints; when a change fails, the transaction
 * is rolled back and the batch runs again with a savepoint around each change, where a refused
 * change rolls back alone, is `rejected`, and its id is forgotten (a retry is judged again).
 * When the refused change was the only one to apply, its rollback was its own: no second run.
 * Any other error (temporary: connection, deadlock) rolls the whole batch back and is thrown:
 * nothing of the batch was applied.
 *
 * When a record's write-buffer state changed between the snapshot and the lock, the whole
 * batch runs again (`retryOnPendingChange`).
 */
export async function applyBatch<TCtx>(
  core: Core<TCtx>,
  clientId: string | undefined,
  items: BatchItem[],
  ctx: TCtx,
): Promise<BatchOutcome[]> {
  const byModel: BatchModels = new Map()
  for (const { req } of items) {
    let entry = byModel.get(req.model.name)
    if (!entry) {
      const model = core.models.get(req.model.name)!
      entry = { model: model as ResolvedModel<unknown>, uids: [], filter: buildFilter(model, undefined, ctx) }
      byModel.set(req.model.name, entry)
    }
    entry.uids.push(req.uid)
  }
  for (const entry of byModel.values()) entry.uids = [...new Set(entry.uids)]

  let savepoints = false
  return retryOnPendingChange(async () => {
    const pending = new Map<string, Map<string, PendingRow>>()
    for (const [name, { model, uids }] of byModel) pending.set(name, await core.pending.snapshot(model, uids))
    const run = { core, clientId, items, ctx, byModel, pending }
    if (!savepoints) {
      try {
        return await runBatch(run, false)
      } catch (error) {
        if (!(error instanceof RefusedChange)) throw error
        // The only change to apply (the others were duplicates): the rollback was its own.
        if (error.outcomes) return error.outcomes
        core.logger.debug(
          `push of ${clientId}: ${error.refusal.code} in a batch, applying it again with savepoints`,
        )
        savepoints = true
      }
    }
    return runBatch(run, true)
  })
}

/** The models of a batch: each one's uids and the caller's filter (scope). */
type BatchModels = Map<string, { model: ResolvedModel<unknown>; uids: string[]; filter: Filter }>

/** A change refused in a batch run without savepoints: the batch must run again with them. */
class RefusedChange extends Error {
  constructor(
    readonly refusal: TidesyncError,
    /** Set when the refused change was the only one to apply: the batch's outcomes. */
    readonly outcomes?: BatchOutcome[],
  ) {
    super(refusal.message)
  }
}

interface BatchRun<TCtx> {
  core: Core<TCtx>
  clientId: string | undefined
  items: BatchItem[]
  ctx: TCtx
  byModel: BatchModels
  pending: Map<string, Map<string, PendingRow>>
}

/**
 * What became of a change inside the transaction: `applied` names, by their index among the
 * staged changes, its own staged change and the one whose metadata it shows (read once the
 * commit serialised them).
 */
type StagedOutcome =
  | { status: 'applied'; own: number; metaOf: number }
  | Exclude<BatchOutcome, { status: 'applied' }>

/** Rows per multi-row INSERT (PostgreSQL takes at most 65535 parameters per statement). */
function insertRowsFor(model: ResolvedModel<unknown>): number {
  return Math.max(1, Math.min(1000, Math.floor(30_000 / model.columns.size)))
}

interface QueuedInsert {
  index: number
  item: BatchItem
  current: CurrentState
}

/** One run of a batch in one transaction (see `applyBatch`), with or without savepoints. */
async function runBatch<TCtx>(run: BatchRun<TCtx>, savepoints: boolean): Promise<BatchOutcome[]> {
  const { core, clientId, items, ctx, byModel, pending } = run
  const c = core as Core
  const { result, changes } = await commitChanges(c, async (tx) => {
    const outcomes: StagedOutcome[] = new Array(items.length)
    const fresh =
      clientId === undefined ? new Set(items.map((item) => item.id)) : await recordIds(c, tx, clientId, items)
    const toApply = items.filter((item) => fresh.has(item.id))
    await lockRecords(tx, [...new Set(toApply.map(({ req }) => recordKey(req.model.name, req.uid)))].sort())
    const states = new Map<string, Map<string, CurrentState>>()
    for (const [name, { model, filter }] of byModel) {
      const uids = [
        ...new Set(toApply.filter(({ req }) => req.model.name === name).map(({ req }) => req.uid)),
      ]
      if (uids.length > 0) states.set(name, await readCurrentMany(tx, c, model, uids, filter.scopeSql))
    }

    const staged: StagedChange[] = []
    const rejected: string[] = []
    /** Each record's state as this transaction left it (see `stateAfter`). */
    const latest = new Map<string, CurrentState>()
    /** Each record's last written change, by its index in `staged`. */
    const lastWritten = new Map<string, number>()

    /** A refusal: without savepoints the batch must run again with them. */
    const refuse = (error: unknown, index: number): void => {
      const mapped = toTidesyncError(error)
      if (!isRejection(mapped)) throw error
      if (!savepoints) {
        // The only change to apply: the rollback is its own, no need to run again.
        const only = toApply.length === 1
        throw new RefusedChange(
          mapped,
          only
            ? items.map((other) =>
                fresh.has(other.id) ? { status: 'rejected', error: mapped } : { status: 'duplicate' },
              )
            : undefined,
        )
      }
      outcomes[index] = { status: 'rejected', error: mapped }
      rejected.push(items[index]!.id)
    }

    const stage = async (index: number, current: CurrentState, inserted?: Record<string, unknown>) => {
      const { req } = items[index]!
      const key = recordKey(req.model.name, req.uid)
      const { filter } = byModel.get(req.model.name)!
      const apply = (on: TidesyncTx) =>
        stageChange(core, on, req, ctx, {
          scopeSql: filter.scopeSql,
          matchesScope: filter.matchesScope,
          pending: pending.get(req.model.name)?.get(req.uid),
          current,
          inserted,
        })
      try {
        const change = savepoints ? await tx.transaction(apply) : await apply(tx)
        const own = staged.push(change) - 1
        if (change.status === 'written') {
          lastWritten.set(key, own)
          latest.set(key, stateAfter(change))
        }
        outcomes[index] = { status: 'applied', own, metaOf: lastWritten.get(key) ?? own }
      } catch (error) {
        refuse(error, index)
      }
    }

    // Without savepoints, consecutive creates of new records of one model are inserted with
    // one statement, then staged one by one (scope, canWrite, metadata) in their order.
    let queue: QueuedInsert[] = []
    const queuedKeys = new Set<string>()
    const flush = async () => {
      if (queue.length === 0) return
      const inserts = queue
      queue = []
      queuedKeys.clear()
      const { model } = inserts[0]!.item.req
      let rows: Array<Record<string, unknown>> = []
      try {
        rows = (await tx
          .insert(model.table)
          .values(inserts.map(({ item: { req } }) => ({ ...req.fields, uid: req.uid })))
          .returning()) as Array<Record<string, unknown>>
      } catch (error) {
        refuse(error, inserts[0]!.index)
      }
      const byUid = new Map(rows.map((row) => [String(row.uid), row]))
      for (const { index, item, current } of inserts) await stage(index, current, byUid.get(item.req.uid))
    }

    for (const [index, item] of items.entries()) {
      if (!fresh.has(item.id)) {
        outcomes[index] = { status: 'duplicate' }
        continue
      }
      const { req } = item
      const key = recordKey(req.model.name, req.uid)
      const queuedModel = queue[0]?.item.req.model
      if (queuedKeys.has(key) || (queuedModel && queuedModel !== req.model)) await flush()
      // A record changed earlier in this batch: as that change left it, without reading it again.
      const current = latest.get(key) ?? states.get(req.model.name)!.get(req.uid)!
      if (!savepoints && insertsNewRow(req, current)) {
        queue.push({ index, item, current })
        queuedKeys.add(key)
        if (queue.length >= insertRowsFor(req.model)) await flush()
        continue
      }
      await flush()
      await stage(index, current)
    }
    await flush()
    if (rejected.length > 0 && clientId !== undefined) await forgetIds(c, tx, clientId, rejected)
    return { staged, result: outcomes }
  })
  // The acknowledgement reads the same serialised changes as the live push.
  return result.map((outcome) =>
    outcome.status === 'applied'
      ? { status: 'applied', record: changes[outcome.own]!.after, meta: changes[outcome.metaOf]!.meta }
      : outcome,
  )
}

/** Records the ids; returns those that were not recorded yet (the changes to apply now). */
async function recordIds(
  core: Core,
  tx: TidesyncTx,
  clientId: string,
  items: BatchItem[],
): Promise<Set<string>> {
  const { applied } = core.tables
  // Sorted, so two pushes of the same ids (a retry racing the original) lock them in one order.
  const ids = [...new Set(items.map((item) => item.id))].sort()
  const inserted = await tx
    .insert(applied)
    .values(ids.map((changeId) => ({ clientId, changeId })))
    .onConflictDoNothing()
    .returning({ changeId: applied.changeId })
  return new Set(inserted.map((row) => row.changeId))
}

/** Rejected changes are not remembered: a retry of one is judged again (and refused again). */
async function forgetIds(core: Core, tx: TidesyncTx, clientId: string, ids: string[]): Promise<void> {
  const { applied } = core.tables
  await tx.delete(applied).where(and(eq(applied.clientId, clientId), inArray(applied.changeId, ids)))
}
