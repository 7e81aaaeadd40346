import { Dexie } from 'dexie'
import type { ClientContext } from './context.js'
import { readAllMetas } from './db/meta-pages.js'
import { emptyMeta, hasPending, type MetaRow } from './db/rows.js'
import { pendingFrom } from './outbox.js'
import type { ModelInfo } from './schema/model.js'

const EPOCH = '1970-01-01T00:00:00.000Z'

function wellFormed(meta: unknown): meta is MetaRow {
  if (meta === null || typeof meta !== 'object') return false
  const m = meta as Partial<MetaRow>
  const isMap = (value: unknown) => value !== null && typeof value === 'object' && !Array.isArray(value)
  const isDate = (value: unknown) =>
    value === null || (typeof value === 'string' && !Number.isNaN(Date.parse(value)))
  return (
    typeof m.uid === 'string' &&
    typeof m.rev === 'number' &&
    isDate(m.created_at) &&
    isDate(m.updated_at) &&
    isDate(m.deleted_at) &&
    isMap(m.clocks) &&
    isMap(m.pending) &&
    isMap(m.base) &&
    isMap(m.deltas) &&
    typeof m.pendingDelete === 'boolean'
  )
}

/**
 * Checks that every record has well-formed meta, that its unconfirmed writes are still in the
 * outbox, and that every live meta row has its record. What is damaged gets neutral meta (epoch timestamps, rev -1: "the server knows better"; pending state
 * rebuilt from the outbox) and the model's checkpoints are dropped, so the next sync is a full
 * reconcile that restores the server's state. Returns the keys of the models it repaired.
 */
export async function repairMetadata(ctx: ClientContext): Promise<string[]> {
  const repaired: string[] = []
  for (const model of ctx.models) if (await repairModel(ctx, model)) repaired.push(model.key)
  return repaired
}

async function repairModel(ctx: ClientContext, model: ModelInfo): Promise<boolean> {
  const { db } = ctx
  return db.dexie.transaction(
    'rw',
    [db.records(model), db.meta(model), db.pages(model), db.outbox, db.checkpoints],
    async () => {
      const [uids, { stored: metas, byUid: metaByUid }, queued] = await Promise.all([
        db.records(model).toCollection().primaryKeys(),
        // Each record's meta: its `m_` row, else its page entry (see `db/meta-pages.ts`).
        readAllMetas(db, model),
        db.outbox.where('[model+uid]').between([model.key, Dexie.minKey], [model.key, Dexie.maxKey]).keys(),
      ])
      const inOutbox = new Set(queued.map((key) => (key as unknown as [string, string])[1]))
      const rowSet = new Set(uids)
      // Damaged: meta missing or malformed, a tombstone beside a live row, or unconfirmed local
      // writes that no outbox entry backs any more (they would never be pushed nor cleared).
      const damaged = uids.filter((uid) => {
        const meta = metaByUid.get(uid)
        return !wellFormed(meta) || meta.deleted_at !== null || (hasPending(meta) && !inOutbox.has(uid))
      })
      const orphans = metas.filter(
        (meta): meta is MetaRow => wellFormed(meta) && !meta.deleted_at && !rowSet.has(meta.uid),
      )
      const malformedOrphans = metas.filter(
        (meta) => !wellFormed(meta) && !rowSet.has((meta as { uid?: string })?.uid ?? ''),
      )
      if (damaged.length === 0 && orphans.length === 0 && malformedOrphans.length === 0) return false
      ctx.logger.warn(
        `${model.key}: repairing local metadata (${damaged.length} records, ${orphans.length + malformedOrphans.length} stray rows); a full reconcile follows`,
      )
      const rows = await db.records(model).bulkGet(damaged)
      const fixed: MetaRow[] = []
      for (const [i, uid] of damaged.entries()) {
        const entries = await db.outbox.where('[model+uid]').equals([model.key, uid]).toArray()
        const meta: MetaRow = {
          ...emptyMeta(uid),
          created_at: EPOCH,
          updated_at: EPOCH,
          ...pendingFrom(model, entries),
        }
        meta.pendingDelete = false
        const row = rows[i] ?? {}
        for (const key of model.counters) meta.base[key] = Number(row[key] ?? 0) - (meta.deltas[key] ?? 0)
        fixed.push(meta)
      }
      if (fixed.length) await db.meta(model).bulkPut(fixed)
      const strays = [
        ...orphans.map((meta) => meta.uid),
        ...malformedOrphans.map((meta) => (meta as { uid?: string })?.uid),
      ]
      const strayKeys = strays.filter((uid): uid is string => typeof uid === 'string')
      if (strayKeys.length) await db.meta(model).bulkDelete(strayKeys)
      await db.checkpoints.where('model').equals(model.key).delete()
      return true
    },
  )
}
