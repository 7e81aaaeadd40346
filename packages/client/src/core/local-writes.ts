import { hlcIso } from '@tidesync/protocol'
import { v7 as uuidv7 } from 'uuid'
import { type ClientContext, nextClock } from './context.js'
import { readRowAndMeta } from './db/meta-pages.js'
import { emptyMeta, type MetaRow, type StoredChange } from './db/rows.js'
import { TidesyncClientError } from './errors.js'
import { enqueue, markPending } from './outbox.js'
import { sameValue, toWire } from './schema/codec.js'
import type { ModelInfo } from './schema/model.js'
import { checkIncrement, prepareCreate, preparePatch } from './schema/validate.js'

/**
 * Local writes: each one changes the record, its meta row and the outbox in ONE Dexie
 * transaction, so the optimistic state and the queued change can never disagree, also after a
 * reload or a crash. Validation happens before the transaction: a bad write is refused at the
 * call with a `TidesyncValidationError` and nothing is stored. The meta's pending state follows
 * from the queued change by the outbox's one rule (`markPending`). Nothing here pushes: the sync
 * engine's push loop watches the outbox.
 */

type Row = Record<string, unknown>

function notFound(model: ModelInfo, uid: string, deleted: boolean): TidesyncClientError {
  return new TidesyncClientError(
    'CLIENT_NOT_FOUND',
    `${model.key} '${uid}' ${deleted ? 'was deleted' : 'does not exist locally'}`,
  )
}

function tables(ctx: ClientContext, model: ModelInfo) {
  const { db } = ctx
  return [db.records(model), db.meta(model), db.pages(model), db.outbox, db.state]
}

/** Queues `change` and stores the record's meta with the change marked pending (in the write's transaction). */
async function queue(
  ctx: ClientContext,
  model: ModelInfo,
  meta: MetaRow,
  change: StoredChange,
): Promise<void> {
  markPending(model, meta, change)
  await ctx.db.meta(model).put(meta)
  await enqueue(ctx.db, model, change, ctx.clock.now())
}

/**
 * The fields a create sends: those the caller gave and the defaults the client computed. A
 * nullable column the caller left out (and that has no default) is null locally but stays off
 * the wire: the database makes it null anyway, and a server that does not know the column yet
 * (an app deployed before the server's migration) still accepts the create.
 */
function createdFields(model: ModelInfo, given: Row, record: Row): Row {
  const sent: Row = {}
  for (const [key, value] of Object.entries(record)) {
    const column = model.columns.get(key)
    const implicitNull = value === null && given[key] === undefined && column && !column.hasDefault
    if (!implicitNull) sent[key] = value
  }
  return sent
}

export async function createRecord(ctx: ClientContext, model: ModelInfo, data: Row): Promise<Row> {
  const uid = typeof data?.uid === 'string' ? data.uid : uuidv7()
  const record = prepareCreate(model, data, uid, ctx.clock.now())
  const { db } = ctx
  return db.dexie.transaction('rw', tables(ctx, model), async () => {
    const [existing, existingMeta] = await readRowAndMeta(db, model, uid)
    if (existing || existingMeta) {
      throw new TidesyncClientError('CLIENT_DUPLICATE_UID', `${model.key} '${uid}' already exists locally`)
    }
    const clock = await nextClock(ctx)
    const meta = emptyMeta(uid)
    meta.created_at = hlcIso(clock)
    meta.updated_at = meta.created_at
    for (const key of Object.keys(record)) {
      if (key === 'uid') continue
      meta.clocks[key] = clock
      if (model.counters.has(key)) meta.base[key] = Number(record[key] ?? 0)
    }
    await db.records(model).add(record)
    const sent = toWire(model, createdFields(model, data, record))
    await queue(ctx, model, meta, { id: uuidv7(), uid, op: 'create', data: sent, clock })
    return record
  })
}

export async function updateRecord(
  ctx: ClientContext,
  model: ModelInfo,
  uid: string,
  patch: Row,
): Promise<Row> {
  const clean = preparePatch(model, patch)
  const { db } = ctx
  return db.dexie.transaction('rw', tables(ctx, model), async () => {
    const [row, stored] = await readRowAndMeta(db, model, uid)
    if (!row) throw notFound(model, uid, Boolean(stored?.deleted_at))
    const changed: Row = {}
    for (const [key, value] of Object.entries(clean)) if (!sameValue(row[key], value)) changed[key] = value
    if (Object.keys(changed).length === 0) return row
    for (const column of model.columns.values()) {
      if (column.makeOnUpdate && !(column.key in clean)) changed[column.key] = column.makeOnUpdate()
    }
    const clock = await nextClock(ctx)
    // A record without meta (a damaged database) gets fresh meta; the next full reconcile fixes it.
    const meta: MetaRow = stored ?? emptyMeta(uid)
    for (const key of Object.keys(changed)) meta.clocks[key] = clock
    meta.updated_at = hlcIso(clock)
    const next = { ...row, ...changed }
    await db.records(model).put(next)
    await queue(ctx, model, meta, { id: uuidv7(), uid, op: 'update', patch: toWire(model, changed), clock })
    return next
  })
}

/** Deletes a record locally and queues the delete; a no-op for a record already deleted or unknown. */
export async function deleteRecord(ctx: ClientContext, model: ModelInfo, uid: string): Promise<boolean> {
  const { db } = ctx
  return db.dexie.transaction('rw', tables(ctx, model), async () => {
    const [row, stored] = await readRowAndMeta(db, model, uid)
    if (!row && (!stored || stored.deleted_at)) return false
    const clock = await nextClock(ctx)
    const meta: MetaRow = stored ?? emptyMeta(uid)
    meta.deleted_at = hlcIso(clock)
    meta.updated_at = meta.deleted_at
    await db.records(model).delete(uid)
    await queue(ctx, model, meta, { id: uuidv7(), uid, op: 'delete', clock })
    return true
  })
}

export async function incrementRecord(
  ctx: ClientContext,
  model: ModelInfo,
  uid: string,
  key: string,
  n: number,
): Promise<Row> {
  checkIncrement(model, key, n)
  const { db } = ctx
  return db.dexie.transaction('rw', tables(ctx, model), async () => {
    const [row, stored] = await readRowAndMeta(db, model, uid)
    if (!row) throw notFound(model, uid, Boolean(stored?.deleted_at))
    if (n === 0) return row
    const clock = await nextClock(ctx)
    const meta: MetaRow = stored ?? { ...emptyMeta(uid), base: { [key]: Number(row[key] ?? 0) } }
    // The value shown so far is base + the deltas still pending; the base is known from it if missing.
    meta.base[key] ??= Number(row[key] ?? 0) - (meta.deltas[key] ?? 0)
    await queue(ctx, model, meta, { id: uuidv7(), uid, op: 'increment', deltas: { [key]: n }, clock })
    const next = { ...row, [key]: meta.base[key] + (meta.deltas[key] ?? 0) }
    await db.records(model).put(next)
    return next
  })
}
