import type { WireRecord } from '@tidesync/protocol'
import { hlcWallMs } from '@tidesync/protocol'
import { eq, type SQL } from 'drizzle-orm'
import type { Core } from '../core.js'
import { lockRecord } from '../db/locks.js'
import type { TidesyncTx } from '../db/types.js'
import { TidesyncError, TidesyncForbiddenError } from '../errors.js'
import { type MetaRow, rowToWire, syntheticMeta } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'
import { readCurrent } from './current-state.js'
import { PendingChangedError, type PendingRow } from './pending-writes.js'
import type { ChangeRequest, CurrentState, StagedChange } from './staged-change.js'
import { sameValue } from './write-buffer-writes.js'

/**
 * The `updated_at` after a change: the change's wall time, but always past the previous one, so
 * that every change (also one carrying an old clock, or a counter delta) makes the record newer
 * for a full reconcile's timestamp comparison.
 */
function bump(previous: Date, wall: Date): Date {
  return wall.getTime() > previous.getTime() ? wall : new Date(previous.getTime() + 1)
}

/** A change that writes nothing: the record stays as it was found. */
function unchanged(req: ChangeRequest, state: CurrentState, core: Core): StagedChange {
  const meta = state.meta ?? syntheticMeta(req.model, req.uid, new Date(core.now()))
  return {
    model: req.model,
    uid: req.uid,
    // A row without metadata (written outside tidesync) gets its metadata now: the repair.
    status: state.row && !state.meta ? 'written' : 'unchanged',
    op: state.row ? 'upsert' : 'delete',
    before: state,
    after: { row: state.row, meta },
  }
}

/**
 * An update, delete or increment of a record without a row: nothing to do on a tombstone
 * (the delete won), `NOT_FOUND` otherwise.
 */
function missing(req: ChangeRequest, state: CurrentState, core: Core): StagedChange {
  if (state.meta?.deletedAt != null) return unchanged(req, state, core)
  throw new TidesyncError('NOT_FOUND', `model ${req.model.name} has no record ${req.uid}`)
}

/** The caller's scope, and the record's pending write-buffer state read before the transaction. */
export interface StageOptions {
  scopeSql: SQL | undefined
  matchesScope: (record: WireRecord) => boolean
  /** From `core.pending.snapshot`, taken before the transaction (undefined: nothing pending). */
  pending: PendingRow | undefined
  /**
   * The caller already confirmed, holding the record's lock, that `pending` is still current
   * (a push batch checks all its records at once: `stillCurrentMany`).
   */
  pendingChecked?: boolean
  /**
   * The record as already read in this transaction, under its lock (a push batch locks and
   * reads its records at once). Without it, the lock is taken and the record read here.
   */
  current?: CurrentState
  /**
   * For a create that `insertsNewRow`: the row already inserted, with `RETURNING *` (a push
   * batch inserts its new records in one statement). Without it, the row is inserted here.
   */
  inserted?: Record<string, unknown>
  /**
   * For an update (or a create of an existing row) whose fields the table takes in the
   * transaction: the row after the caller already set `acceptedFields(req, current)` on it (a
   * push batch updates its records in few statements: `writeRows`). Without it, the row is
   * updated here.
   */
  updated?: Record<string, unknown>
}

/**
 * True when `req` is a create that inserts a new row into the record's current state: no row,
 * and no delete with a newer clock (a create older than the delete does not resurrect it).
 */
export function insertsNewRow(req: ChangeRequest, state: CurrentState): boolean {
  if (req.op !== 'create' || state.row) return false
  const deletedClock = state.meta?.deletedAt != null ? state.meta.deletedClock : null
  return !(deletedClock && deletedClock >= req.clock)
}

/**
 * The pending values that differ from the row as read under the lock (a flush may have
 * written some of them to the table since the snapshot): only those change what the record is.
 */
function differing(pending: PendingRow, row: Record<string, unknown> | null): PendingRow {
  if (row === null) return pending
  let values: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(pending.values)) {
    if (sameValue(value, row[key])) {
      values ??= { ...pending.values }
      delete values[key]
    }
  }
  return values ? { ...pending, values } : pending
}

/**
 * The state as read with the pending values put on its row and on its `to_jsonb` form kept in
 * the change log (new objects: the state as read is left as it is).
 */
function withPending(model: ResolvedModel<unknown>, state: CurrentState, pending: PendingRow): CurrentState {
  const row = { ...state.row }
  const json = { ...(state.json as Record<string, unknown>) }
  for (const [key, value] of Object.entries(pending.values)) {
    row[key] = value
    json[model.columns.get(key)!.name] = toWireValue(value)
  }
  return { ...state, row, json }
}

/**
 * Applies one change inside `tx`, holding the record's advisory lock until commit:
 * per-field last-write-wins by HLC for create/update, delete always wins (a tombstone stays),
 * counters add deltas. Checks scope (before and after) and `canWrite`; any refusal throws, which
 * rolls the whole transaction back (or the change's savepoint). The metadata and change log are
 * written by `writeRevisions`, after every change of the transaction is staged.
 *
 * Nothing is written to the write buffer here: writes it takes (counter deltas, updates of a
 * `buffered` model) are returned as `deferredDeltas` / `deferredFields`, and `commitChanges`
 * hands them over once the transaction committed, so a refused or rolled-back change never
 * reaches it.
 *
 * The record's pending write-buffer state was read before the transaction (reading it may read
 * the database); under the lock it is confirmed unchanged, else `PendingChangedError` (retry).
 */
export async function stageChange<TCtx>(
  core: Core<TCtx>,
  tx: TidesyncTx,
  req: ChangeRequest,
  ctx: TCtx,
  options: StageOptions,
): Promise<StagedChange> {
  const { model, uid, clock } = req
  const { scopeSql, matchesScope } = options
  let state = options.current
  if (!state) {
    await lockRecord(tx, model.name, uid)
    state = await readCurrent(tx, core, model, uid, scopeSql)
  }
  if (!options.pendingChecked && !(await core.pending.stillCurrent(model, uid, options.pending)))
    throw new PendingChangedError()
  const pending = options.pending && differing(options.pending, state.row)
  const overlaid = state.row !== null && pending !== undefined && Object.keys(pending.values).length > 0
  if (overlaid) state = withPending(model, state, pending)
  // Scope matchers and `canWrite` judge wire records; the change's own wire form is made once,
  // after the commit (`wireChange`).
  const beforeWire = state.row ? rowToWire(model, state.row) : null
  if (beforeWire) {
    // Pending values decide: a buffered change may have moved the record into or out of scope.
    const inScope = overlaid ? matchesScope(beforeWire) : state.inScope
    if (!inScope) throw new TidesyncForbiddenError(`record ${uid} is outside your scope`)
  }
  const wall = new Date(hlcWallMs(clock))
  const now = new Date(core.now())
  const baseMeta: MetaRow = state.meta ?? syntheticMeta(model, uid, now)

  let after: Record<string, unknown> | null = null
  let meta: MetaRow
  let op: 'upsert' | 'delete' = 'upsert'
  let deferredDeltas: Record<string, number> | undefined
  let deferredFields: Record<string, unknown> | undefined

  switch (req.op) {
    case 'create': {
      const fields = req.fields ?? {}
      if (!state.row) {
        // A create older than the delete that made the tombstone does not resurrect the record.
        if (!insertsNewRow(req, state)) return unchanged(req, state, core as Core)
        after =
          options.inserted ??
          ((
            await tx
              .insert(model.table)
              .values({ ...fields, uid })
              .returning()
          )[0] as Record<string, unknown>)
        const clocks: Record<string, string> = {}
        for (const key of Object.keys(fields))
          if (key !== 'uid' && !model.counters.has(key)) clocks[key] = clock
        const updatedAt = state.meta ? bump(state.meta.updatedAt, wall) : wall
        meta = { ...baseMeta, createdAt: wall, updatedAt, deletedAt: null, deletedClock: null, clocks }
        break
      }
      // Create of an existing uid is an upsert: merge like an update (counters keep their value).
      const merged = await mergeFields(
        core as Core,
        tx,
        req,
        state,
        fields,
        baseMeta,
        wall,
        pending,
        options.updated,
      )
      if (!merged) return unchanged(req, state, core as Core)
      ;({ after, meta, deferredFields } = merged)
      break
    }
    case 'update': {
      if (!state.row) return missing(req, state, core as Core)
      const merged = await mergeFields(
        core as Core,
        tx,
        req,
        state,
        req.fields ?? {},
        baseMeta,
        wall,
        pending,
        options.updated,
      )
      if (!merged) return unchanged(req, state, core as Core)
      ;({ after, meta, deferredFields } = merged)
      break
    }
    case 'delete': {
      if (!state.row) return missing(req, state, core as Core)
      await tx.delete(model.table).where(eq(model.uid, uid))
      op = 'delete'
      meta = { ...baseMeta, deletedAt: wall, deletedClock: clock, updatedAt: bump(baseMeta.updatedAt, wall) }
      break
    }
    case 'increment': {
      if (!state.row) return missing(req, state, core as Core)
      const deltas = req.deltas ?? {}
      const row = await core.pending.increment(tx, model, uid, deltas)
      if (row) {
        after = row
      } else {
        // Deferred to the write buffer (after the checks below and the commit): show the record
        // with the deltas added at once.
        after = { ...state.row }
        for (const [key, delta] of Object.entries(deltas)) after[key] = Number(after[key] ?? 0) + delta
        deferredDeltas = deltas
      }
      meta = { ...baseMeta, updatedAt: bump(baseMeta.updatedAt, wall) }
      break
    }
  }

  const afterWire = after ? rowToWire(model, after) : null
  if (afterWire && !matchesScope(afterWire)) {
    throw new TidesyncForbiddenError(`the record would leave your scope`)
  }
  if (model.canWrite) {
    const subject = afterWire ?? beforeWire!
    const allowed = await model.canWrite(ctx, subject, { op: req.op, previous: beforeWire })
    if (allowed !== true)
      throw new TidesyncForbiddenError(`not allowed to ${req.op} record ${uid} of ${model.name}`)
  }
  return {
    model,
    uid,
    status: 'written',
    op,
    before: state,
    after: { row: after, meta: meta! },
    deferredDeltas,
    deferredFields,
  }
}

/**
 * The fields of an update (or of a create of an existing row) that per-field LWW takes: those
 * whose clock in the record's metadata is older than the change's (all of them when it has
 * none), counters and `uid` never. Null when none is taken (the change leaves the row as it is).
 */
export function acceptedFields(req: ChangeRequest, state: CurrentState): Record<string, unknown> | null {
  return lww(req, req.fields ?? {}, state.meta?.clocks ?? {}).accepted
}

function lww(
  req: ChangeRequest,
  fields: Record<string, unknown>,
  previous: Record<string, string>,
): { accepted: Record<string, unknown> | null; clocks: Record<string, string> } {
  const { model, clock } = req
  const accepted: Record<string, unknown> = {}
  const clocks = { ...previous }
  let taken = false
  for (const [key, value] of Object.entries(fields)) {
    if (key === 'uid' || model.counters.has(key)) continue
    const current = clocks[key]
    if (current !== undefined && current >= clock) continue
    accepted[key] = value
    clocks[key] = clock
    taken = true
  }
  return { accepted: taken ? accepted : null, clocks }
}

/**
 * Per-field LWW: a field is taken when the change's clock is newer than the field's clock.
 * Fields of a `buffered` model are not written here: they come back as `deferredFields`.
 */
async function mergeFields(
  core: Core,
  tx: TidesyncTx,
  req: ChangeRequest,
  state: CurrentState,
  fields: Record<string, unknown>,
  baseMeta: MetaRow,
  wall: Date,
  pending: PendingRow | undefined,
  updated: Record<string, unknown> | undefined,
): Promise<{
  after: Record<string, unknown>
  meta: MetaRow
  deferredFields?: Record<string, unknown>
} | null> {
  const { model, uid } = req
  const { accepted, clocks } = lww(req, fields, baseMeta.clocks)
  if (!accepted) return null
  const written = updated ?? (await core.pending.update(tx, model, uid, accepted))
  const meta = { ...baseMeta, clocks, updatedAt: bump(baseMeta.updatedAt, wall) }
  // Deferred to the write buffer (after the checks and the commit): the row as it will be.
  if (!written) return { after: { ...state.row!, ...accepted }, meta, deferredFields: accepted }
  // Written to the table, which lacks what is still pending in the buffer (counter deltas):
  // overlay it, as reads do, so the answer and the live push carry the record as it is.
  const after = { ...written }
  for (const [key, value] of Object.entries(pending?.values ?? {})) if (!(key in accepted)) after[key] = value
  return { after, meta }
}
