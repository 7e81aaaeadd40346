import type { Change } from '@tidesync/protocol'
import type { LocalDb } from './db/database.js'
import type { MetaRow, OutboxRow, StoredChange } from './db/rows.js'
import type { ModelInfo } from './schema/model.js'

/**
 * The outbox: local changes waiting for the server. An entry is written in the same Dexie
 * transaction as the local write it describes, and removed only once the server answered for
 * it (applied, duplicate or rejected); so a change is never lost and, with the cross-tab push
 * lock, never pushed by two tabs at once.
 *
 * An entry names its model by the schema key (`OutboxRow.model`, as every local table does); the
 * model's wire name goes on the change only when it is sent (`wireChange`).
 */

/**
 * Adds a change of `model`, inside the caller's transaction; its commit tells the push loop
 * (`LocalDb.onQueued`).
 */
export async function enqueue(
  db: LocalDb,
  model: ModelInfo,
  change: StoredChange,
  now: number,
): Promise<void> {
  await db.outbox.add({ id: change.id, model: model.key, uid: change.uid, change, queuedAt: now })
  db.markQueued()
}

/** The oldest `limit` entries. */
export function nextBatch(db: LocalDb, limit: number): Promise<OutboxRow[]> {
  return db.outbox.orderBy('seq').limit(limit).toArray()
}

/** Every entry for one record, oldest first. */
export async function entriesFor(db: LocalDb, model: ModelInfo, uid: string): Promise<OutboxRow[]> {
  const rows = await db.outbox.where('[model+uid]').equals([model.key, uid]).toArray()
  return rows.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
}

/**
 * An entry's change as the server gets it: under its model's wire name. Rows stored by earlier
 * versions carry the wire name in `change.model` too; the schema's current name wins, and that
 * stored name is only used for a model the schema no longer has.
 */
export function wireChange(models: readonly ModelInfo[], entry: OutboxRow): Change {
  const { model: stored, ...change } = entry.change as StoredChange & { model?: string }
  const model = models.find((candidate) => candidate.key === entry.model)
  return { ...change, model: model?.wireName ?? stored ?? entry.model } as Change
}

/** What a record's unconfirmed local writes add up to: the derived part of its meta. */
export type PendingState = Pick<MetaRow, 'pending' | 'deltas' | 'pendingDelete'>

/**
 * Adds one queued change to a record's pending state, in place: the fields it writes (with the
 * newest clock; counters are not fields but deltas), its counter deltas, a delete. The one rule
 * for what "pending" means: local writes apply it as they queue a change, and `pendingFrom`
 * folds it over the entries still queued once the server answered for some.
 */
export function markPending(model: ModelInfo, state: PendingState, change: StoredChange): void {
  const mark = (fields: Record<string, unknown>) => {
    for (const key of Object.keys(fields)) {
      if (key === 'uid' || !model.columns.has(key) || model.counters.has(key)) continue
      const current = state.pending[key]
      if (current === undefined || change.clock > current) state.pending[key] = change.clock
    }
  }
  switch (change.op) {
    case 'create':
      mark(change.data)
      break
    case 'update':
      mark(change.patch)
      break
    case 'increment':
      for (const [key, delta] of Object.entries(change.deltas)) {
        if (!model.columns.has(key)) continue
        const sum = (state.deltas[key] ?? 0) + delta
        if (sum === 0) delete state.deltas[key]
        else state.deltas[key] = sum
      }
      break
    case 'delete':
      state.pendingDelete = true
      break
  }
}

/** What is still unconfirmed for a record, from scratch: `markPending` over its queued entries. */
export function pendingFrom(model: ModelInfo, entries: readonly OutboxRow[]): PendingState {
  const state: PendingState = { pending: {}, deltas: {}, pendingDelete: false }
  for (const { change } of entries) markPending(model, state, change)
  return state
}
