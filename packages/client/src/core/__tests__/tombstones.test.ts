import { HybridClock, type RecordWithMeta } from '@tidesync/protocol'
import { v7 as uuidv7 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { uniqueDbName } from '../../__tests__/helpers/idb.js'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { applyServerBatch } from '../apply-server.js'
import type { ClientContext } from '../context.js'
import { type LocalDb, openLocalDb } from '../db/database.js'
import { systemClock, systemTimers } from '../env.js'
import { type ModelInfo, readSchema } from '../schema/model.js'

// Server data reaches a client out of revision order (answers read before a live push that
// overtakes them, live pushes published out of order): whatever the order, a tombstone the
// client was told about wins over every older state of the record, held or not. The local store
// alone, with server data applied as the sync steps apply it (`applyServerBatch`).

const silent = { debug() {}, info() {}, warn() {}, error() {} }
const BASE = Date.UTC(2025, 0, 1)
const iso = (ms: number) => new Date(ms).toISOString()

const opened: LocalDb[] = []
afterEach(() => {
  for (const db of opened.splice(0)) db.close()
})

async function openCtx(): Promise<{ ctx: ClientContext; model: ModelInfo; db: LocalDb }> {
  const models = readSchema(schema, modelOptions)
  const db = await openLocalDb(uniqueDbName('tombstones'), models, {})
  opened.push(db)
  const ctx: ClientContext = {
    db,
    models,
    hlc: new HybridClock('client1', () => Date.now()),
    clock: systemClock,
    timers: systemTimers,
    logger: silent,
    clientId: 'client-1',
    chunkSize: 1000,
  }
  return { ctx, model: models.find((m) => m.key === 'todos')!, db }
}

function state(uid: string, rev: number, projectId = 'p'): RecordWithMeta {
  return {
    record: { uid, title: `t${rev}`, done: false, projectId, likes: 0, dueAt: null, tags: null },
    meta: { created_at: iso(BASE), updated_at: iso(BASE + rev), deleted_at: null, rev, clocks: {} },
  }
}

const tombstoneOf = (uid: string, rev: number) => ({ uid, deleted_at: iso(BASE + rev), rev })

describe('tombstones win over older states, whatever the order', () => {
  it('a tombstone of a record the client never held keeps its older states out', async () => {
    const { ctx, model, db } = await openCtx()
    const gone = uuidv7()
    await applyServerBatch(ctx, model, { deletes: [tombstoneOf(gone, 10)] })
    expect(await db.meta(model).get(gone)).toMatchObject({ uid: gone, deleted_at: iso(BASE + 10), rev: 10 })

    // One older state (a live push), then a page of fresh records with it (a pull's bulk path:
    // range read of the local keys and a metadata page).
    await applyServerBatch(ctx, model, { upserts: [state(gone, 3)] })
    expect(await db.records(model).get(gone)).toBeUndefined()
    const others = Array.from({ length: 80 }, () => uuidv7())
    const page = [...others.slice(0, 40), gone, ...others.slice(40)].map((uid) => state(uid, 5))
    await applyServerBatch(ctx, model, { upserts: page })
    expect(await db.records(model).get(gone)).toBeUndefined()
    expect(await db.records(model).count()).toBe(80)
    // Answers to pushes and refreshes (only records the client holds) as well.
    await applyServerBatch(ctx, model, { upserts: [state(gone, 4)] }, { onlyKnown: true })
    expect(await db.records(model).get(gone)).toBeUndefined()
  })

  it('an eviction that comes after a tombstone does not forget it', async () => {
    const { ctx, model, db } = await openCtx()
    const uid = uuidv7()
    await applyServerBatch(ctx, model, { upserts: [state(uid, 1)] })
    await applyServerBatch(ctx, model, { deletes: [tombstoneOf(uid, 4)] })
    // A late eviction (the record left the subset at revision 3, then was deleted at 4).
    await applyServerBatch(ctx, model, { evict: [uid] })
    expect(await db.meta(model).get(uid)).toMatchObject({ deleted_at: iso(BASE + 4), rev: 4 })
    await applyServerBatch(ctx, model, { upserts: [state(uid, 2)] })
    expect(await db.records(model).get(uid)).toBeUndefined()
  })

  it('an eviction still drops a live record and its metadata', async () => {
    const { ctx, model, db } = await openCtx()
    const uid = uuidv7()
    await applyServerBatch(ctx, model, { upserts: [state(uid, 1)] })
    await applyServerBatch(ctx, model, { evict: [uid] })
    expect(await db.records(model).get(uid)).toBeUndefined()
    expect(await db.meta(model).get(uid)).toBeUndefined()
    // It may come back: it still exists on the server.
    await applyServerBatch(ctx, model, { upserts: [state(uid, 5)] })
    expect(await db.records(model).get(uid)).toMatchObject({ uid, title: 't5' })
  })
})
