import { formatHlc, HybridClock, type RecordWithMeta } from '@tidesync/protocol'
import { v7 as uuidv7 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { uniqueDbName } from '../../__tests__/helpers/idb.js'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { applyServerBatch } from '../apply-server.js'
import type { ClientContext } from '../context.js'
import { type LocalDb, openLocalDb } from '../db/database.js'
import { MetaPageBuilder, pageMetas, readAllMetas, readMetas, readRowAndMeta } from '../db/meta-pages.js'
import type { MetaRow } from '../db/rows.js'
import { systemClock, systemTimers } from '../env.js'
import { repairMetadata } from '../integrity.js'
import { deleteRecord, updateRecord } from '../local-writes.js'
import { type ModelInfo, readSchema } from '../schema/model.js'

// The rules of `db/meta-pages.ts` on the local store alone: server data applied as a pull applies
// it (`applyServerBatch`), local writes as the app makes them.

const silent = { debug() {}, info() {}, warn() {}, error() {} }
const BASE = Date.UTC(2025, 0, 1)
const iso = (ms: number) => new Date(ms).toISOString()
const clockAt = (rev: number) => formatHlc(BASE + rev * 1000, 0, 'server')

const opened: LocalDb[] = []
afterEach(() => {
  for (const db of opened.splice(0)) db.close()
})

async function openCtx(chunkSize = 1000): Promise<{ ctx: ClientContext; model: ModelInfo; db: LocalDb }> {
  const models = readSchema(schema, modelOptions)
  const db = await openLocalDb(uniqueDbName('meta-pages'), models, {})
  opened.push(db)
  const ctx: ClientContext = {
    db,
    models,
    hlc: new HybridClock('client1', () => Date.now()),
    clock: systemClock,
    timers: systemTimers,
    logger: silent,
    clientId: 'client-1',
    chunkSize,
  }
  return { ctx, model: models.find((m) => m.key === 'todos')!, db }
}

/** A server state of record `i` at revision `rev` (dates, json, nulls, a counter). */
function state(uid: string, i: number, rev: number, record: Record<string, unknown> = {}): RecordWithMeta {
  return {
    record: {
      uid,
      title: `t${i}`,
      done: i % 2 === 0,
      projectId: 'p',
      likes: i,
      dueAt: i % 3 ? iso(BASE + i) : null,
      tags: i % 4 ? ['a', `${i}`] : null,
      ...record,
    } as RecordWithMeta['record'],
    meta: {
      created_at: iso(BASE),
      updated_at: iso(BASE + rev * 1000),
      deleted_at: null,
      rev,
      // Records of one revision share their clocks, as records written together do.
      clocks: { title: clockAt(rev), done: clockAt(rev), likes: clockAt(rev), tags: clockAt(rev) },
    },
  }
}

/** The metadata an `m_` row holds for a server state applied to nothing. */
function expectedMeta(item: RecordWithMeta): MetaRow {
  return {
    uid: item.record.uid,
    created_at: item.meta.created_at,
    updated_at: item.meta.updated_at,
    deleted_at: null,
    rev: item.meta.rev,
    clocks: item.meta.clocks,
    pending: {},
    base: { likes: Number(item.record.likes) },
    deltas: {},
    pendingDelete: false,
  }
}

const sortedUids = (n: number) => Array.from({ length: n }, () => uuidv7()).sort()

/** What the client holds of each uid: its row and its metadata, by the rules. */
async function held(db: LocalDb, model: ModelInfo, uids: string[]) {
  const rows = await db.records(model).bulkGet(uids)
  const metas = await readMetas(db, model, uids, rows)
  return uids.map((uid, i) => ({ uid, row: rows[i], meta: metas[i] }))
}

describe('metadata pages', () => {
  it('an initial load of 32+ fresh records per chunk writes one page per chunk and no m_ rows', async () => {
    const { ctx, model, db } = await openCtx(35)
    const uids = sortedUids(70)
    const items = uids.map((uid, i) => state(uid, i, 5))
    const checkpoint = { key: 'todos|{}', model: 'todos', where: {}, checkpoint: 'r:5', updatedAt: 1 }
    await applyServerBatch(ctx, model, { upserts: items }, { checkpoint })
    expect(await db.meta(model).count()).toBe(0)
    const pages = await db.pages(model).toArray()
    expect(pages.map((p) => p.uids.length)).toEqual([35, 35])
    // Keys: first and last uid of each page; records of one revision share one clock set.
    expect(pages.map((p) => [p.key[0], p.key[1]])).toEqual([
      [uids[0], uids[34]],
      [uids[35], uids[69]],
    ])
    expect(pages.every((p) => p.clockSets.length === 1)).toBe(true)
    expect(await db.checkpoints.get('todos|{}')).toMatchObject({ checkpoint: 'r:5' })

    const rows = await db.records(model).bulkGet(uids)
    expect(rows[1]).toEqual({
      uid: uids[1],
      title: 't1',
      done: false,
      projectId: 'p',
      likes: 1,
      dueAt: new Date(BASE + 1),
      tags: ['a', '1'],
    })
    expect(rows[0]).toMatchObject({ dueAt: null, tags: null })
    // Each record's metadata comes from its page entry, the same as an m_ row would hold.
    for (const { uid, meta } of await held(db, model, uids)) {
      expect(meta).toEqual(expectedMeta(items[uids.indexOf(uid)]!))
    }
    expect((await readRowAndMeta(db, model, uids[40]!))[1]).toEqual(expectedMeta(items[40]!))
    const { byUid, stored } = await readAllMetas(db, model)
    expect(stored).toEqual([])
    expect(byUid.size).toBe(70)
    expect(byUid.get(uids[69]!)).toEqual(expectedMeta(items[69]!))
  })

  it('fewer than 32 fresh records per chunk go to m_ rows with the same metadata', async () => {
    const { ctx, model, db } = await openCtx(20)
    const uids = sortedUids(40)
    const items = uids.map((uid, i) => state(uid, i, 5))
    await applyServerBatch(ctx, model, { upserts: items })
    expect(await db.pages(model).count()).toBe(0)
    const metas = await db.meta(model).bulkGet(uids)
    for (const [i, meta] of metas.entries()) expect(meta).toEqual(expectedMeta(items[i]!))
  })

  it('local writes, newer and older server states, tombstones, evictions and returns follow the rules', async () => {
    const { ctx, model, db } = await openCtx()
    const uids = sortedUids(40)
    const items = uids.map((uid, i) => state(uid, i, 5))
    await applyServerBatch(ctx, model, { upserts: items })
    const [localUid, newerUid, olderUid, deletedUid, evictedUid, untouched] = [
      uids[3]!,
      uids[7]!,
      uids[11]!,
      uids[15]!,
      uids[19]!,
      uids[23]!,
    ]

    // A local update: an m_ row from the page entry, with the write pending; the page is untouched.
    await updateRecord(ctx, model, localUid, { title: 'local' })
    const local = await db.meta(model).get(localUid)
    expect(local).toMatchObject({ rev: 5, created_at: iso(BASE), base: { likes: 3 } })
    expect(Object.keys(local!.pending)).toEqual(['title'])
    expect(local!.clocks.title).toBe(local!.pending.title)
    expect(local!.clocks.done).toBe(clockAt(5))
    expect(await db.outbox.count()).toBe(1)
    expect((await db.pages(model).toArray())[0]!.uids).toHaveLength(40)

    // A newer server state: written to an m_ row, which wins over the page from then on.
    await applyServerBatch(ctx, model, {
      upserts: [state(newerUid, 7, 9, { title: 'server v9', likes: 70 })],
    })
    expect(await db.records(model).get(newerUid)).toMatchObject({ title: 'server v9', likes: 70 })
    expect(await db.meta(model).get(newerUid)).toMatchObject({ rev: 9, base: { likes: 70 } })
    // A server state older than the page entry: ignored.
    await applyServerBatch(ctx, model, { upserts: [state(olderUid, 11, 3, { title: 'stale' })] })
    expect(await db.records(model).get(olderUid)).toMatchObject({ title: 't11' })
    expect(await db.meta(model).get(olderUid)).toBeUndefined()
    expect((await readRowAndMeta(db, model, olderUid))[1]).toMatchObject({ rev: 5 })

    // A tombstone: the row goes, an m_ tombstone stays; a later state never brings it back.
    await applyServerBatch(ctx, model, {
      deletes: [{ uid: deletedUid, deleted_at: iso(BASE + 10_000), rev: 10 }],
    })
    expect(await db.records(model).get(deletedUid)).toBeUndefined()
    expect(await db.meta(model).get(deletedUid)).toMatchObject({ deleted_at: iso(BASE + 10_000), rev: 10 })
    await applyServerBatch(ctx, model, { upserts: [state(deletedUid, 15, 11)] })
    expect(await db.records(model).get(deletedUid)).toBeUndefined()

    // An eviction: row and metadata go, and the record leaves its page.
    await applyServerBatch(ctx, model, { evict: [evictedUid] })
    expect(await db.records(model).get(evictedUid)).toBeUndefined()
    expect(await readRowAndMeta(db, model, evictedUid)).toEqual([undefined, undefined])
    expect((await pageMetas(db, model, [evictedUid])).size).toBe(0)
    const [page] = await db.pages(model).toArray()
    expect(page!.uids).toHaveLength(39)
    expect(page!.uids).not.toContain(evictedUid)
    expect(page!.base.likes).toHaveLength(39)

    // It comes back later with a newer state: that state, not the old page entry.
    await applyServerBatch(ctx, model, { upserts: [state(evictedUid, 19, 12, { title: 'back' })] })
    expect(await db.records(model).get(evictedUid)).toMatchObject({ title: 'back' })
    expect((await readRowAndMeta(db, model, evictedUid))[1]).toMatchObject({ rev: 12 })

    // A local delete of a paged record: a pending tombstone from its page entry.
    expect(await deleteRecord(ctx, model, uids[27]!)).toBe(true)
    expect(await db.meta(model).get(uids[27]!)).toMatchObject({
      rev: 5,
      pendingDelete: true,
      base: { likes: 27 },
    })
    expect((await db.meta(model).get(uids[27]!))!.deleted_at).not.toBeNull()

    // Everything else still reads from the page.
    expect((await readRowAndMeta(db, model, untouched))[1]).toEqual(expectedMeta(items[23]!))
    const state$ = await held(db, model, uids)
    for (const { uid, row, meta } of state$) {
      if (uid === deletedUid || uid === uids[27]) {
        expect(row).toBeUndefined()
        expect(meta?.deleted_at).not.toBeNull()
      } else {
        expect(row).toBeDefined()
        expect(meta?.deleted_at).toBeNull()
      }
    }
    // The integrity check sees the page entries: nothing to repair.
    expect(await repairMetadata(ctx)).toEqual([])
    const { byUid } = await readAllMetas(db, model)
    for (const uid of uids) expect(byUid.has(uid)).toBe(true)
  })

  it('records evicted in bulk come back in a new page; the newer page wins where two list a uid', async () => {
    const { ctx, model, db } = await openCtx()
    const uids = sortedUids(80)
    await applyServerBatch(ctx, model, { upserts: uids.slice(0, 40).map((uid, i) => state(uid, i, 5)) })
    const leaving = uids.slice(0, 35)
    await applyServerBatch(ctx, model, { evict: leaving })
    expect((await db.pages(model).toArray())[0]!.uids).toEqual(uids.slice(35, 40))
    // A chunk of 80 states (a range read): 35 coming back, 5 held (newer), 40 new.
    const batch = uids.map((uid, i) => state(uid, i, 8, { title: `v8-${i}` }))
    await applyServerBatch(ctx, model, { upserts: batch })
    const pages = (await db.pages(model).toArray()).sort((a, b) => (a.key[2] < b.key[2] ? -1 : 1))
    expect(pages).toHaveLength(2)
    expect(pages[0]!.uids).toEqual(uids.slice(35, 40))
    expect(pages[1]!.uids).toEqual([...uids.slice(0, 35), ...uids.slice(40)])
    // The 5 held records merged into m_ rows (rev 8), the others read from the new page.
    expect((await db.meta(model).bulkGet(uids.slice(35, 40))).map((m) => m?.rev)).toEqual([8, 8, 8, 8, 8])
    for (const { uid, row, meta } of await held(db, model, uids)) {
      const i = uids.indexOf(uid)
      expect(row).toMatchObject({ title: `v8-${i}` })
      expect(meta).toEqual(expectedMeta(batch[i]!))
    }

    // Two pages listing one uid (a page entry outlives its record's m_ row): the newer wins.
    const uid = uids[50]!
    const builder = new MetaPageBuilder(model)
    const newer = state(uid, 50, 20)
    builder.add(uid, newer.meta, { likes: 50 })
    await db.pages(model).add(builder.build())
    expect((await pageMetas(db, model, [uid])).get(uid)).toMatchObject({ rev: 20 })
    expect((await readAllMetas(db, model)).byUid.get(uid)).toMatchObject({ rev: 20 })
    expect((await readRowAndMeta(db, model, uid))[1]).toMatchObject({ rev: 20 })
  })

  it('the integrity check counts page entries only while their record exists', async () => {
    const { ctx, model, db } = await openCtx()
    const uids = sortedUids(33)
    await applyServerBatch(ctx, model, { upserts: uids.map((uid, i) => state(uid, i, 5)) })
    // A page entry without its row is not a stray m_ row: nothing to repair.
    await db.records(model).delete(uids[0]!)
    expect(await repairMetadata(ctx)).toEqual([])
    // Rows whose metadata is gone (the page lost) are repaired: the check did read the page.
    await db.checkpoints.put({ key: 'todos|{}', model: 'todos', where: {}, checkpoint: 'r:5', updatedAt: 1 })
    await db.pages(model).clear()
    expect(await repairMetadata(ctx)).toEqual(['todos'])
    expect(await db.meta(model).count()).toBe(32)
    expect(await db.checkpoints.count()).toBe(0)
  })
})
