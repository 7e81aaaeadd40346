import type { ChangeOutcome, RecordWithMeta, Tombstone } from '@tidesync/protocol'
import { applyServerBatch } from './apply-server.js'
import { type ClientContext, findModel } from './context.js'
import { readRowAndMeta } from './db/meta-pages.js'
import type { CheckpointRow, MetaRow, OutboxRow } from './db/rows.js'
import { TidesyncServerError } from './errors.js'
import { mergeServerState, tombstone, withCounters } from './merge.js'
import { entriesFor, pendingFrom } from './outbox.js'
import { sameValue } from './schema/codec.js'
import type { ModelInfo } from './schema/model.js'

type Row = Record<string, unknown>

/**
 * The server's data as the sync steps apply it, in transactions of at most `chunkSize` records
 * (see `applyServerBatch`). Every function is idempotent: applying the same data twice is
 * harmless, which is what makes retries and two tabs safe.
 */

/** Applies server states of records. Returns how many were processed. */
export async function applyUpserts(
  ctx: ClientContext,
  model: ModelInfo,
  items: readonly RecordWithMeta[],
  options: { onlyKnown?: boolean; onChunk?: (applied: number) => void } = {},
): Promise<number> {
  await applyServerBatch(ctx, model, { upserts: items }, options)
  return items.length
}

/**
 * Applies server deletions: the record row goes, a tombstone stays in meta for records the client
 * knew (so a late or replayed state can never bring them back).
 */
export async function applyTombstones(
  ctx: ClientContext,
  model: ModelInfo,
  items: readonly Tombstone[],
): Promise<void> {
  if (items.length > 0) await applyServerBatch(ctx, model, { deletes: items })
}

/** Drops records that left the client's subset: no tombstone, they still exist on the server. */
export async function evictRecords(
  ctx: ClientContext,
  model: ModelInfo,
  uids: readonly string[],
): Promise<void> {
  if (uids.length > 0) await applyServerBatch(ctx, model, { evict: uids })
}

/** Stores a subset's checkpoint. */
export async function saveCheckpoint(ctx: ClientContext, row: CheckpointRow): Promise<void> {
  await ctx.db.checkpoints.put(row)
}

/** What the answers to a push leave for the sync engine to do. */
export interface OutcomeFollowUp {
  /** Records whose state must be fetched again (rejected or duplicate changes). */
  refresh: Array<{ model: ModelInfo; uid: string }>
  /** One error per rejected change. */
  errors: TidesyncServerError[]
  /** The server revision each record answered with a state now holds. */
  stored: Array<{ model: ModelInfo; uid: string; rev: number }>
}

/** Whether two record rows hold the same values. */
function sameRow(a: Row, b: Row): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const key of keys) if (!sameValue(a[key], b[key])) return false
  return true
}

/**
 * Applies the server's answers to a push in one transaction: removes the answered entries from
 * the outbox, recomputes what is still pending for each record, and merges the server state the
 * answer carries. A record row that comes out unchanged (the usual case: the server took the
 * write as sent) is not written again, so live queries over it do not emit for the answer.
 */
export async function applyOutcomes(
  ctx: ClientContext,
  entries: readonly OutboxRow[],
  outcomes: readonly ChangeOutcome[],
): Promise<OutcomeFollowUp> {
  const { db } = ctx
  const byId = new Map(entries.map((entry) => [entry.id, entry]))
  const followUp: OutcomeFollowUp = { refresh: [], errors: [], stored: [] }
  const touched = new Map<
    string,
    { model: ModelInfo; uid: string; states: RecordWithMeta[]; deleted?: Tombstone }
  >()
  const answered: number[] = []
  for (const outcome of outcomes) {
    const entry = byId.get(outcome.id)
    if (!entry) continue
    const model = findModel(ctx.models, entry.model)
    if (entry.seq !== undefined) answered.push(entry.seq)
    if (!model) continue
    const key = `${model.key}|${entry.uid}`
    const target = touched.get(key) ?? { model, uid: entry.uid, states: [] }
    touched.set(key, target)
    if (outcome.status === 'applied') {
      if (outcome.record) target.states.push({ record: outcome.record, meta: outcome.meta })
      else if (outcome.meta.deleted_at) {
        target.deleted = { uid: entry.uid, deleted_at: outcome.meta.deleted_at, rev: outcome.meta.rev }
      }
    } else {
      followUp.refresh.push({ model, uid: entry.uid })
      if (outcome.status === 'rejected') {
        followUp.errors.push(
          new TidesyncServerError(
            outcome.error.code,
            `The server rejected ${entry.change.op} of ${model.key} '${entry.uid}': ${outcome.error.message}`,
            false,
            'sync:push',
            { id: entry.id, model: model.key, uid: entry.uid, op: entry.change.op },
          ),
        )
      }
    }
  }
  const models = [...new Set([...touched.values()].map((t) => t.model))]
  const scope = [
    db.outbox,
    ...models.flatMap((model) => [db.records(model), db.meta(model), db.pages(model)]),
  ]
  await db.dexie.transaction('rw', scope, async () => {
    await db.outbox.bulkDelete(answered)
    for (const { model, uid, states, deleted } of touched.values()) {
      const [row, stored] = await readRowAndMeta(db, model, uid)
      if (!row && !stored) continue
      const remaining = pendingFrom(model, await entriesFor(db, model, uid))
      let meta: MetaRow | undefined = stored ? { ...stored, ...remaining } : undefined
      let nextRow: Row | null | undefined = row
      if (deleted && meta) {
        meta = { ...tombstone(meta, deleted.deleted_at, deleted.rev), pendingDelete: remaining.pendingDelete }
        nextRow = null
      }
      const latest = states.sort((a, b) => b.meta.rev - a.meta.rev)[0]
      if (latest && nextRow !== null) {
        const result = mergeServerState(model, latest, row, meta, true)
        if (result.meta !== undefined) meta = result.meta ?? undefined
        if (result.row !== undefined) nextRow = result.row
      }
      if (nextRow && meta) nextRow = withCounters(model, nextRow, meta)
      if (nextRow === null) await db.records(model).delete(uid)
      else if (nextRow && !(row && sameRow(row, nextRow))) await db.records(model).put(nextRow)
      if (meta) await db.meta(model).put(meta)
      if (meta && (latest || deleted)) followUp.stored.push({ model, uid, rev: meta.rev })
    }
  })
  return followUp
}
