import type { Change } from '@tidesync/protocol'
import type { LocalDb } from './db/database.js'
import type { MetaRow, OutboxRow } from './db/rows.js'
import { wireKey } from './schema/codec.js'
import type { ModelInfo } from './schema/model.js'

/**
 * The outbox: local changes waiting for the server. An entry is written in the same Dexie
 * transaction as the local write it describes, and removed only once the server answered for
 * it (applied, duplicate or rejected); so a change is never lost and, with the cross-tab push
 * lock, never pushed by two tabs at once.
 */

/** Adds a change (inside the caller's transaction). */
export async function enqueue(db: LocalDb, model: ModelInfo, change: Change, now: number): Promise<void> {
  await db.outbox.add({ id: change.id, model: model.key, uid: change.uid, change, queuedAt: now })
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
 * Recomputes what is still unconfirmed for a record from its remaining outbox entries: the
 * pending fields (newest clock), the counter deltas and a pending delete. Called after the
 * server answered for some of the record's changes.
 */
export function pendingFrom(
  model: ModelInfo,
  entries: readonly OutboxRow[],
): Pick<MetaRow, 'pending' | 'deltas' | 'pendingDelete'> {
  const pending: Record<string, string> = {}
  const deltas: Record<string, number> = {}
  let pendingDelete = false
  const byWire = new Map([...model.columns.values()].map((column) => [wireKey(column), column.key]))
  const mark = (fields: Record<string, unknown>, clock: string) => {
    for (const wire of Object.keys(fields)) {
      const key = byWire.get(wire)
      if (!key || key === 'uid' || model.counters.has(key)) continue
      const current = pending[key]
      if (current === undefined || clock > current) pending[key] = clock
    }
  }
  for (const { change } of entries) {
    switch (change.op) {
      case 'create':
        mark(change.data, change.clock)
        break
      case 'update':
        mark(change.patch, change.clock)
        break
      case 'increment':
        for (const [wire, delta] of Object.entries(change.deltas)) {
          const key = byWire.get(wire)
          if (key) deltas[key] = (deltas[key] ?? 0) + delta
        }
        break
      case 'delete':
        pendingDelete = true
        break
    }
  }
  for (const [key, delta] of Object.entries(deltas)) if (delta === 0) delete deltas[key]
  return { pending, deltas, pendingDelete }
}
