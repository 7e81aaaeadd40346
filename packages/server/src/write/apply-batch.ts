import { and, eq, inArray, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { lockRecords, recordKey, recordLocksSql } from '../db/locks.js'
import { toTidesyncError } from '../db/map-error.js'
import { tableSql } from '../db/raw-rows.js'
import { rowsOf, type TidesyncTx } from '../db/types.js'
import { isRejection, type TidesyncError } from '../errors.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { buildFilter, type Filter } from '../model/scope.js'
import { acceptedFields, insertsNewRow, stageChange } from './apply-change.js'
import { commitChanges } from './commit.js'
import { readCurrentMany, stateAfter } from './current-state.js'
import { type PendingRow, retryOnPendingChange } from './pending-writes.js'
import type { BatchItem, BatchOutcome, ChangeRequest, CurrentState, StagedChange } from './staged-change.js'
import { writeRows } from './write-rows.js'

/**
 * What a batch already holds, for `fitsBatch`: its records (by key, with the caller of each)
 * and its change ids (per client).
 */
export interface BatchShape {
  records: Map<string, unknown>
  ids: Set<string>
}

export function emptyShape(): BatchShape {
  return { records: new Map(), ids: new Set() }
}

/** The key of a change id: ids are unique per client (a service write has none). */
function idKey(item: CallerItem<unknown>): string {
  return `${item.clientId ?? ''}\u0000${item.id}`
}

/**
 * Whether `item` can join a batch of `shape`. A change id twice goes to a later transaction (it
 * then sees the first one's record); so does a record written twice when its writes may be
 * deferred outside the transaction (write buffer), and a record already written in the batch
 * for another caller (whether a record is in a caller's scope is read once per record).
 */
export function fitsBatch<TCtx>(core: Core, item: CallerItem<TCtx>, shape: BatchShape): boolean {
  if (shape.ids.has(idKey(item))) return false
  const { model, uid } = item.req
  const key = recordKey(model.name, uid)
  if (!shape.records.has(key)) return true
  return shape.records.get(key) === item.ctx && !core.pending.defersWrites(model)
}

/** Adds `item` to `shape` (after `fitsBatch` said it fits). */
export function addToShape<TCtx>(shape: BatchShape, item: CallerItem<TCtx>): void {
  shape.ids.add(idKey(item))
  shape.records.set(recordKey(item.req.model.name, item.req.uid), item.ctx)
}

/**
 * A change with its caller: the user's context (scope, `canWrite`) and, for a push, the client
 * whose change ids are remembered. A batch may hold changes of many callers (group commit).
 */
export interface CallerItem<TCtx> extends BatchItem {
  ctx: TCtx
  clientId?: string
}

/**
 * Applies a batch of changes in **one transaction**, in order, and publishes them after the
 * commit: the entry of every write, a push's batches and a service call alike (a batch of
 * one). Per change, the outcome is what a transaction of its own would have given:
 *
 * - Changes may come from several callers (group commit: pushes of many clients share a
 *   transaction); each is judged with its own caller's scope and `canWrite`.
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
export async function applyBatch<TCtx>(core: Core<TCtx>, items: CallerItem<TCtx>[]): Promise<BatchOutcome[]> {
  const byModel: BatchModels = new Map()
  for (const item of items) {
    const { req, ctx } = item
    let entry = byModel.get(req.model.name)
    if (!entry) {
      const model = core.models.get(req.model.name)!
      entry = { model: model as ResolvedModel<unknown>, uids: [], filters: new Map() }
      byModel.set(req.model.name, entry)
    }
    entry.uids.push(req.uid)
    if (!entry.filters.has(ctx)) {
      entry.filters.set(ctx, buildFilter(core.models.get(req.model.name)!, undefined, ctx))
    }
  }
  for (const entry of byModel.values()) entry.uids = [...new Set(entry.uids)]

  let savepoints = false
  return retryOnPendingChange(async () => {
    const pending = new Map<string, Map<string, PendingRow>>()
    for (const [name, { model, uids }] of byModel) pending.set(name, await core.pending.snapshot(model, uids))
    const run = { core, items, byModel, pending }
    if (!savepoints) {
      try {
        return await runBatch(run, false)
      } catch (error) {
        if (!(error instanceof RefusedChange)) throw error
        // The only change to apply (the others were duplicates): the rollback was its own.
        if (error.outcomes) return error.outcomes
        core.logger.debug(
          `a batch of ${items.length} change(s): ${error.refusal.code}, applying it again with savepoints`,
        )
        savepoints = true
      }
    }
    return runBatch(run, true)
  })
}

/** The models of a batch: each one's uids and each caller's filter (scope), by caller context. */
type BatchModels = Map<
  string,
  { model: ResolvedModel<unknown>; uids: string[]; filters: Map<unknown, Filter> }
>

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
  items: CallerItem<TCtx>[]
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

/**
 * A change whose row write waits to be done with others' (without savepoints): a create of a
 * new record (one multi-row `INSERT`) or an update the table takes in the transaction (one
 * `UPDATE ... FROM (VALUES ...)` per set of columns: `writeRows`).
 */
interface QueuedWrite {
  index: number
  item: CallerItem<unknown>
  current: CurrentState
  /** For an update: the fields LWW takes (`acceptedFields`). */
  fields?: Record<string, unknown>
}

/** One run of a batch in one transaction (see `applyBatch`), with or without savepoints. */
async function runBatch<TCtx>(run: BatchRun<TCtx>, savepoints: boolean): Promise<BatchOutcome[]> {
  const { core, items, byModel, pending } = run
  const c = core as Core
  const { result, changes } = await commitChanges(
    c,
    async (tx) => {
      const outcomes: StagedOutcome[] = new Array(items.length)
      // One statement: capture off (this transaction logs its changes itself), the records'
      // locks, then the change ids.
      const fresh = await lockAndRecordIds(c, tx, items)
      const toApply = items.filter((item) => fresh.has(idKey(item)))
      const states = new Map<string, Map<string, CurrentState>>()
      for (const [name, { model, filters }] of byModel) {
        const ofModel = toApply.filter(({ req }) => req.model.name === name)
        if (ofModel.length === 0) continue
        // Each record is judged in the scope of the caller who writes it (one caller per record).
        const scopes = new Map<unknown, { uids: string[]; scopeSql: SQL | undefined }>()
        for (const { req, ctx } of ofModel) {
          const scope = scopes.get(ctx)
          if (scope) scope.uids.push(req.uid)
          else scopes.set(ctx, { uids: [req.uid], scopeSql: filters.get(ctx)!.scopeSql })
        }
        states.set(name, await readCurrentMany(tx, c, model, [...scopes.values()]))
        // Holding the records' locks: the write-buffer state each change starts from must be the
        // one read before the transaction; a record written (or unmarked) since has it read
        // again now, under its lock (all records of the model at once).
        const read = states.get(name)!
        const seen = new Map<string, PendingRow | undefined>()
        const rows = new Map<string, Record<string, unknown> | null>()
        for (const { req } of ofModel) {
          seen.set(req.uid, pending.get(name)?.get(req.uid))
          rows.set(req.uid, read.get(req.uid)?.row ?? null)
        }
        const refreshed = await c.pending.refreshPending(tx, model, seen, rows)
        if (refreshed.size > 0) {
          let ofPending = pending.get(name)
          if (!ofPending) {
            ofPending = new Map()
            pending.set(name, ofPending)
          }
          for (const [uid, row] of refreshed) {
            if (row) ofPending.set(uid, row)
            else ofPending.delete(uid)
          }
        }
      }

      const staged: StagedChange[] = []
      const rejected: CallerItem<TCtx>[] = []
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
                  fresh.has(idKey(other)) ? { status: 'rejected', error: mapped } : { status: 'duplicate' },
                )
              : undefined,
          )
        }
        outcomes[index] = { status: 'rejected', error: mapped }
        rejected.push(items[index]!)
      }

      const stage = async (
        index: number,
        current: CurrentState,
        written: { inserted?: Record<string, unknown>; updated?: Record<string, unknown> } = {},
      ) => {
        const { req, ctx } = items[index]!
        const key = recordKey(req.model.name, req.uid)
        const filter = byModel.get(req.model.name)!.filters.get(ctx)!
        const apply = (on: TidesyncTx) =>
          stageChange(core, on, req, ctx, {
            scopeSql: filter.scopeSql,
            matchesScope: filter.matchesScope,
            pending: pending.get(req.model.name)?.get(req.uid),
            pendingChecked: true,
            current,
            ...written,
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

      // Without savepoints, consecutive creates of new records and updates of existing ones, of
      // one model, write their rows together (one INSERT, one UPDATE per set of columns), then
      // are staged one by one (scope, canWrite, metadata) in their order.
      let queue: QueuedWrite[] = []
      const queuedKeys = new Set<string>()
      const flush = async () => {
        if (queue.length === 0) return
        const queued = queue
        queue = []
        queuedKeys.clear()
        const { model } = queued[0]!.item.req
        const inserts = queued.filter((q) => !q.fields)
        const updates = queued.filter((q) => q.fields)
        let written = new Map<string, Record<string, unknown>>()
        try {
          written = await writeRows(
            tx,
            model,
            inserts.map(({ item: { req } }) => ({ ...req.fields, uid: req.uid })),
            updates.map((q) => ({ uid: q.item.req.uid, fields: q.fields! })),
          )
        } catch (error) {
          refuse(error, queued[0]!.index)
        }
        for (const { index, item, current, fields } of queued) {
          const uid = item.req.uid
          await stage(index, current, fields ? { updated: written.get(uid) } : { inserted: written.get(uid) })
        }
      }

      for (const [index, item] of items.entries()) {
        if (!fresh.has(idKey(item))) {
          outcomes[index] = { status: 'duplicate' }
          continue
        }
        const { req } = item
        const key = recordKey(req.model.name, req.uid)
        const queuedModel = queue[0]?.item.req.model
        if (queuedKeys.has(key) || (queuedModel && queuedModel !== req.model)) await flush()
        // A record changed earlier in this batch: as that change left it, without reading it again.
        const current = latest.get(key) ?? states.get(req.model.name)!.get(req.uid)!
        const fields = savepoints ? null : queuedUpdate(c, req, current)
        if (!savepoints && (fields || insertsNewRow(req, current))) {
          queue.push({ index, item, current, ...(fields ? { fields } : {}) })
          queuedKeys.add(key)
          if (queue.length >= insertRowsFor(req.model)) await flush()
          continue
        }
        await flush()
        await stage(index, current)
      }
      await flush()
      await forgetIds(c, tx, rejected)
      return { staged, result: outcomes }
    },
    { captureOffByWork: true },
  )
  // The acknowledgement reads the same serialised changes as the live push.
  return result.map((outcome) =>
    outcome.status === 'applied'
      ? { status: 'applied', record: changes[outcome.own]!.after, meta: changes[outcome.metaOf]!.meta }
      : outcome,
  )
}

/**
 * The fields a change sets on an existing row in the transaction, when its row write may wait
 * for the batch's `writeRows`: an update (or a create of an existing row) whose fields LWW
 * takes, of a model whose table takes updates in the transaction. Null otherwise.
 */
function queuedUpdate(core: Core, req: ChangeRequest, current: CurrentState): Record<string, unknown> | null {
  if ((req.op !== 'update' && req.op !== 'create') || !current.row) return null
  if (!core.pending.updatesInTransaction(req.model)) return null
  return acceptedFields(req, current)
}

/**
 * In one statement: turns change capture off for the transaction, takes the locks of every
 * record of the batch (sorted keys, see `lockRecords`), then records the change ids of the
 * pushes (`ON CONFLICT DO NOTHING`; the ids wait behind the locks, a one-time filter on them).
 * Returns the keys (`idKey`) of the changes to apply now: those not recorded before, and
 * service writes. The records of changes that turn out to be duplicates are locked too
 * (harmless: the same sorted order), so that the locks need no round trip of their own.
 */
async function lockAndRecordIds<TCtx>(
  core: Core,
  tx: TidesyncTx,
  items: CallerItem<TCtx>[],
): Promise<Set<string>> {
  const fresh = new Set(items.filter((item) => item.clientId === undefined).map(idKey))
  const keys = [...new Set(items.map(({ req }) => recordKey(req.model.name, req.uid)))].sort()
  const pushed = items.filter((item) => item.clientId !== undefined)
  if (pushed.length === 0) {
    await lockRecords(tx, keys, { captureOff: true })
    return fresh
  }
  const { applied } = core.tables
  // Sorted, so two pushes of the same ids (a retry racing the original) lock them in one order.
  const pairs = [...new Map(pushed.map((item) => [idKey(item), item])).values()]
    .map((item) => ({ c: item.clientId!, i: item.id }))
    .sort((a, b) => compare(a.c, b.c) || compare(a.i, b.i))
  const a = tableSql(applied)
  const inserted = rowsOf<{ c: string; i: string }>(
    await tx.execute(
      sql`WITH locked AS MATERIALIZED (SELECT ${recordLocksSql(keys, { captureOff: true })} AS n)
INSERT INTO ${a.from} (${a.name('clientId')}, ${a.name('changeId')})
SELECT c, i FROM jsonb_to_recordset(${JSON.stringify(pairs)}::jsonb) AS r(c text, i text)
WHERE (SELECT n FROM locked) IS NOT NULL
ON CONFLICT DO NOTHING RETURNING ${a.name('clientId')} AS c, ${a.name('changeId')} AS i`,
    ),
  )
  for (const row of inserted) fresh.add(`${row.c}\u0000${row.i}`)
  return fresh
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Rejected changes are not remembered: a retry of one is judged again (and refused again). */
async function forgetIds<TCtx>(core: Core, tx: TidesyncTx, rejected: CallerItem<TCtx>[]): Promise<void> {
  const { applied } = core.tables
  const byClient = new Map<string, string[]>()
  for (const item of rejected) {
    if (item.clientId === undefined) continue
    const ids = byClient.get(item.clientId)
    if (ids) ids.push(item.id)
    else byClient.set(item.clientId, [item.id])
  }
  for (const [clientId, ids] of byClient) {
    await tx.delete(applied).where(and(eq(applied.clientId, clientId), inArray(applied.changeId, ids)))
  }
}
