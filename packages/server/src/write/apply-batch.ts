import { errorPolicy, type WireRecord } from '@tidesync/protocol'
import { and, eq, inArray } from 'drizzle-orm'
import type { Core } from '../core.js'
import { toTidesyncError } from '../db/map-error.js'
import type { TidesyncTx } from '../db/types.js'
import type { TidesyncError } from '../errors.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { buildFilter, type Filter } from '../sync/scope.js'
import { insertsNewRow, stageChange } from './apply-change.js'
import { commitChanges } from './commit.js'
import { type CurrentState, lockRecords, readCurrentMany, recordKey, stateAfter } from './current-state.js'
import { type PendingRow, retryOnPendingChange } from './pending-writes.js'
import type { ChangeRequest, StagedChange } from './staged-change.js'

/**
 * True when an error refuses one change of a push for good (it is `rejected`, the others apply):
 * its code's `rejectsChange` in the protocol's `ERROR_CODES`. Any other error fails the whole
 * push (the client retries it later).
 */
export function isRejection(error: TidesyncError): boolean {
  return errorPolicy(error.code).rejectsChange
}

/** One validated change of a push. @internal */
export interface BatchItem {
  id: string
  req: ChangeRequest
}

/**
 * What became of one change of a batch. `applied`: the record after it, and the staged write
 * whose metadata it shows (its own, or, when it changed nothing, the batch's last write of the
 * record); read `metaOf.meta` after the commit, which gave it its revision. @internal
 */
export type BatchOutcome =
  | { status: 'applied'; record: WireRecord | null; metaOf: StagedChange }
  | { status: 'duplicate' }
  | { status: 'rejected'; error: TidesyncError }

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
 * Applies a batch of one client's changes in **one transaction**, in order, and publishes them
 * after the commit. Per change, the outcome is what a transaction of its own would have given:
 *
 * - The change ids are recorded first, in one statement (`ON CONFLICT DO NOTHING`): an id that
 *   is already there is a `duplicate` (applied by an earlier push) and is not applied again. A
 *   concurrent push of the same ids waits on those rows until this one commits.
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
 * Any other error (temporary: connection, deadlock) rolls the whole batch back and is thrown:
 * nothing of the batch was applied.
 *
 * When a record's write-buffer state changed between the snapshot and the lock, the whole
 * batch runs again (`retryOnPendingChange`).
 */
export async function applyBatch<TCtx>(
  core: Core<TCtx>,
  clientId: string,
  items: BatchItem[],
  ctx: TCtx,
): Promise<BatchOutcome[]> {
  const byModel = new Map<string, { model: ResolvedModel<unknown>; uids: string[]; filter: Filter }>()
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
  clientId: string
  items: BatchItem[]
  ctx: TCtx
  byModel: Map<string, { model: ResolvedModel<unknown>; uids: string[]; filter: Filter }>
  pending: Map<string, Map<string, PendingRow>>
}

/** Rows per multi-row INSERT (PostgreSQL takes at most 65535 parameters per statement). */
function insertRowsFor(model: ResolvedModel<unknown>): number {
  return Math.max(1, Math.min(1000, Math.floor(30_000 / model.columns.size)))
}

interface QueuedInsert {
  index: number
  item: BatchItem
  current: CurrentState
}

async function runBatch<TCtx>(run: BatchRun<TCtx>, savepoints: boolean): Promise<BatchOutcome[]> {
  const { core, clientId, items, ctx, byModel, pending } = run
  const c = core as Core
  const { result } = await commitChanges(c, async (tx) => {
    const outcomes: BatchOutcome[] = new Array(items.length)
    const fresh = await recordIds(c, tx, clientId, items)
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
    const lastWritten = new Map<string, StagedChange>()

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
        staged.push(change)
        if (change.status === 'written') {
          lastWritten.set(key, change)
          latest.set(key, stateAfter(change))
        }
        outcomes[index] = { status: 'applied', record: change.after, metaOf: lastWritten.get(key) ?? change }
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
    if (rejected.length > 0) await forgetIds(c, tx, clientId, rejected)
    return { staged, result: outcomes }
  })
  return result
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
