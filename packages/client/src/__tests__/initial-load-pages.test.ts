import type { RecordWithMeta } from '@tidesync/protocol'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type LocalDb, openLocalDb } from '../core/db/database.js'
import { readMetas } from '../core/db/meta-pages.js'
import { TidesyncServerError } from '../core/errors.js'
import { readSchema } from '../core/schema/model.js'
import { settle, type TestClient, testClient } from './helpers/clients.js'
import { uniqueDbName, waitFor } from './helpers/idb.js'
import { modelOptions, schema } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

// Initial loads against a real server: one that stores its metadata in pages (db/meta-pages.ts),
// then everything that can happen to those records afterwards (the local rows and metadata must
// stay the server's); and pulls in columns (`format: 'columns'`) against pulls in records.

let server: TestServer
const clients: TestClient[] = []
const dbs: LocalDb[] = []
const models = readSchema(schema, modelOptions)
const model = models.find((m) => m.key === 'todos')!

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  for (const db of dbs.splice(0)) db.close()
  await Promise.all(clients.splice(0).map((client) => client.close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`
const service = () => server.tidesync.services.todos!

/** Another connection to the client's database, to read what it stored (reads only). */
async function inspect(dbName: string): Promise<LocalDb> {
  const db = await openLocalDb(dbName, models, {})
  dbs.push(db)
  return db
}

/** The server's records of a project, with metadata, by uid. */
async function serverRecords(projectId: string): Promise<Map<string, RecordWithMeta>> {
  const rows = await service().findMany({ where: { projectId } }, {})
  return new Map(rows.map((r) => [r.record.uid, r]))
}

/** Every local record of the project and its metadata (m_ row or page entry) equal the server's. */
async function expectServerState(db: LocalDb, projectId: string): Promise<void> {
  const expected = await serverRecords(projectId)
  const rows = (await db.records(model).toArray()).filter((row) => row.projectId === projectId)
  expect(rows.map((row) => row.uid).sort()).toEqual([...expected.keys()].sort())
  const uids = rows.map((row) => row.uid as string)
  const metas = await readMetas(db, model, uids, rows)
  rows.forEach((row, i) => {
    const server = expected.get(row.uid as string)!
    const local = Object.fromEntries(
      Object.entries(row).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : value]),
    )
    expect(local).toEqual(server.record)
    expect(metas[i]).toMatchObject({
      rev: server.meta.rev,
      created_at: server.meta.created_at,
      updated_at: server.meta.updated_at,
      deleted_at: null,
      pending: {},
      deltas: {},
      base: { likes: server.record.likes },
    })
  })
}

/** Every local record of a project with its metadata, sorted by uid (to compare two clients). */
async function dump(db: LocalDb, projectId: string) {
  const rows = (await db.records(model).toArray()).filter((row) => row.projectId === projectId)
  const metas = await readMetas(
    db,
    model,
    rows.map((row) => row.uid as string),
    rows,
  )
  return rows.map((row, i) => ({ row, meta: metas[i] })).sort((a, b) => (a.row.uid! < b.row.uid! ? -1 : 1))
}

/** The sync:pull requests the server received for a where, from index `since` on. */
const pullsFor = (since: number, test: (where: Record<string, unknown>) => boolean) =>
  server.requests
    .slice(since)
    .filter((r) => r.event === 'sync:pull' && test((r.payload.where ?? {}) as Record<string, unknown>))
    .map((r) => r.payload)

async function seed(projectId: string, count: number): Promise<string[]> {
  const uids: string[] = []
  for (let i = 0; i < count; i++) {
    const created = (await service().create(
      {
        data: {
          title: `todo ${i}`,
          projectId,
          done: i % 2 === 0,
          likes: i,
          dueAt: i % 3 ? new Date(Date.UTC(2025, 0, 1 + i)).toISOString() : null,
          tags: i % 4 ? ['t', String(i)] : null,
        },
      },
      {},
    )) as RecordWithMeta
    uids.push(created.record.uid)
  }
  return uids.sort()
}

describe('initial load with metadata pages', () => {
  it('keeps rows and metadata right through local writes, server changes, deletes, evictions and returns', async () => {
    const p = project()
    const uids = await seed(p, 60)
    const dbName = uniqueDbName()
    const a = testClient(server, { dbName })
    clients.push(a)
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await settle(a)
    const db = await inspect(dbName)
    // One chunk of 60 fresh records: one page, no m_ rows.
    expect(await db.meta(model).count()).toBe(0)
    const pages = await db.pages(model).toArray()
    expect(pages.map((page) => page.uids)).toEqual([uids])
    await expectServerState(db, p)

    const [localUid, serverUid, deletedUid, evictedUid] = [uids[5]!, uids[10]!, uids[20]!, uids[30]!]
    // A local write, pushed and confirmed.
    await a.collection('todos').update(localUid, { title: 'local edit', done: true })
    await a.collection('todos').increment(localUid, 'likes', 4)
    await settle(a)
    expect((await serverRecords(p)).get(localUid)?.record).toMatchObject({ title: 'local edit', likes: 9 })
    // A newer server state, live.
    await service().update({ uid: serverUid, patch: { title: 'server edit', tags: { k: [1, 2] } } }, {})
    await waitFor(async () => (await a.collection('todos').get(serverUid))?.title === 'server edit')
    // A delete on the server: a tombstone.
    await service().delete({ uid: deletedUid }, {})
    await waitFor(async () => (await a.collection('todos').get(deletedUid)) === undefined)
    expect(await db.meta(model).get(deletedUid)).toMatchObject({ deleted_at: expect.any(String) })
    // Leaves the subset: evicted, and out of its page.
    await service().update({ uid: evictedUid, patch: { projectId: `${p}-elsewhere` } }, {})
    await waitFor(async () => (await a.collection('todos').get(evictedUid)) === undefined)
    expect(await db.meta(model).get(evictedUid)).toBeUndefined()
    expect((await db.pages(model).toArray()).flatMap((page) => page.uids)).not.toContain(evictedUid)
    // Comes back later, changed meanwhile.
    await service().update({ uid: evictedUid, patch: { title: 'returned' } }, {})
    await service().update({ uid: evictedUid, patch: { projectId: p } }, {})
    await waitFor(async () => (await a.collection('todos').get(evictedUid))?.title === 'returned')
    await settle(a)
    await expectServerState(db, p)
    sub.unsubscribe()
  })

  it('a reopened client finds its page metadata intact (a delta pull), and a full reconcile converges', async () => {
    const p = project()
    const uids = await seed(p, 40)
    const dbName = uniqueDbName()
    const first = testClient(server, { dbName })
    clients.push(first)
    const sub = first.collection('todos').find$({ projectId: p }).subscribe()
    await settle(first)
    sub.unsubscribe()
    await first.close()

    // Reopened: the integrity check reads the page entries, finds nothing to repair, keeps the
    // checkpoint: the next sync is a delta pull.
    const requestsOf = (since: number, event: string) =>
      server.requests
        .slice(since)
        .filter(
          (r) =>
            r.event === event && (r.payload.where as { projectId?: string } | undefined)?.projectId === p,
        )
    let since = server.requests.length
    const b = testClient(server, { dbName })
    clients.push(b)
    const subB = b.collection('todos').find$({ projectId: p }).subscribe()
    await settle(b)
    expect(requestsOf(since, 'sync:full')).toEqual([])
    expect(requestsOf(since, 'sync:pull').map((r) => r.payload.checkpoint)).not.toContain('0')
    expect(requestsOf(since, 'sync:pull').length).toBeGreaterThan(0)

    // A full reconcile after the page load: the dictionary carries the page metadata (the server's
    // own timestamps), so the two sides agree and nothing is pushed.
    b.goOffline()
    await service().update({ uid: uids[3]!, patch: { title: 'changed while away' } }, {})
    await service().delete({ uid: uids[4]! }, {})
    const before = await serverRecords(p)
    server.failNext('sync:pull', 1, { code: 'CHECKPOINT_EXPIRED', message: 'checkpoint pruned' })
    const pushedBefore = server.pushedChangeIds.get(await b.clientId())?.length ?? 0
    since = server.requests.length
    await settle(b)
    const [full] = requestsOf(since, 'sync:full')
    expect(full).toBeDefined()
    const metadata = full!.payload.metadata as Record<string, { updated_at: string }>
    expect(Object.keys(metadata)).toHaveLength(40)
    expect(metadata[uids[10]!]!.updated_at).toBe(before.get(uids[10]!)!.meta.updated_at)
    expect(server.pushedChangeIds.get(await b.clientId())?.length ?? 0).toBe(pushedBefore)
    const after = await serverRecords(p)
    for (const [uid, record] of after) expect(record.meta.rev).toBe(before.get(uid)!.meta.rev)
    const db = await inspect(dbName)
    await expectServerState(db, p)
    expect(await b.collection('todos').get(uids[4]!)).toBeUndefined()
    expect((await b.collection('todos').get(uids[3]!))?.title).toBe('changed while away')
    subB.unsubscribe()
  })
})

describe('columnar pulls', () => {
  it('leave the same local data as pulls in records (a server refusing format)', async () => {
    const p = project()
    const uids = await seed(p, 90)
    // Pages of 40: two chunks whose metadata goes into pages, one of 10 into m_ rows.
    const since = server.requests.length
    const columnsName = uniqueDbName()
    const columns = testClient(server, { dbName: columnsName, pageSize: 40 })
    clients.push(columns)
    const subC = columns.collection('todos').find$({ projectId: p }).subscribe()
    await settle(columns)
    // The other client meets a server that refuses `format` (as one that predates it): it pulls
    // again without, and from then on asks for records.
    const recordsName = uniqueDbName()
    server.failNext('sync:pull', 1, { code: 'BAD_REQUEST', message: 'unknown key: format' })
    const records = testClient(server, { dbName: recordsName, pageSize: 40 })
    clients.push(records)
    const subR = records
      .collection('todos')
      .find$({ projectId: { in: [p] } })
      .subscribe()
    await settle(records)

    // Changes while both are offline: their next pulls read the change log.
    columns.goOffline()
    records.goOffline()
    await service().update({ uid: uids[1]!, patch: { title: 'changed', tags: { deep: [1, null] } } }, {})
    await service().update({ uid: uids[50]!, patch: { dueAt: null, done: true } }, {})
    await service().delete({ uid: uids[2]! }, {})
    await service().update({ uid: uids[3]!, patch: { projectId: `${p}-other` } }, {})
    await service().create(
      { data: { title: 'new', projectId: p, likes: 4, dueAt: new Date().toISOString() } },
      {},
    )
    await settle(columns)
    await settle(records)

    const isColumnsWhere = (where: Record<string, unknown>) => where.projectId === p
    const isRecordsWhere = (where: Record<string, unknown>) =>
      JSON.stringify(where.projectId) === JSON.stringify({ in: [p] })
    const columnPulls = pullsFor(since, isColumnsWhere)
    const recordPulls = pullsFor(since, isRecordsWhere)
    expect(columnPulls.length).toBeGreaterThanOrEqual(4)
    expect(columnPulls.every((r) => r.format === 'columns')).toBe(true)
    expect(recordPulls[0]).toMatchObject({ checkpoint: '0', format: 'columns' })
    expect(recordPulls.length).toBeGreaterThanOrEqual(5)
    expect(recordPulls.slice(1).every((r) => r.format === undefined)).toBe(true)

    const dbC = await inspect(columnsName)
    const dbR = await inspect(recordsName)
    const fromColumns = await dump(dbC, p)
    expect(fromColumns).toHaveLength(89)
    expect(await dump(dbR, p)).toEqual(fromColumns)
    await expectServerState(dbC, p)
    expect((await dbC.pages(model).toArray()).length).toBe(2)
    expect((await dbR.pages(model).toArray()).length).toBe(2)
    subC.unsubscribe()
    subR.unsubscribe()
  })

  it('a malformed columnar page is reported as a TidesyncServerError, writes nothing, and the load resumes', async () => {
    const p = project()
    await seed(p, 50)
    let corrupt = true
    // In front of the real handler: from the second page on, the answer loses a metadata tuple.
    server.io.on('connection', (socket) => {
      socket.use((packet, next) => {
        const [event, payload] = packet as [string, { where?: { projectId?: string }; checkpoint?: string }]
        const ack = packet[packet.length - 1]
        if (event === 'sync:pull' && payload?.where?.projectId === p && payload.checkpoint !== '0') {
          if (typeof ack === 'function') {
            packet[packet.length - 1] = (reply: { result?: { columns?: { meta: unknown[] } } }) => {
              const columns = reply.result?.columns
              ack(
                corrupt && columns
                  ? {
                      ...reply,
                      result: { ...reply.result, columns: { ...columns, meta: columns.meta.slice(1) } },
                    }
                  : reply,
              )
            }
          }
        }
        next()
      })
    })
    const dbName = uniqueDbName()
    const client = testClient(server, { dbName, pageSize: 20 })
    clients.push(client)
    const errors: unknown[] = []
    const errorSub = client.errors$.subscribe((error) => errors.push(error))
    const since = server.requests.length
    const sub = client.collection('todos').find$({ projectId: p }).subscribe()
    await waitFor(() => errors.length > 0, 5000, 'the error')
    const error = errors[0] as TidesyncServerError
    expect(error).toBeInstanceOf(TidesyncServerError)
    expect(error).toMatchObject({ code: 'INTERNAL', operation: 'sync:pull', retryable: true })
    expect(error.message).toMatch(/^Malformed columnar page from the server: 20 rows but 19 metadata tuples/)
    // The first page (well formed) is stored with its checkpoint; nothing of the malformed one.
    const db = await inspect(dbName)
    expect(await db.records(model).count()).toBe(20)
    expect((await client.collection('todos').find({ projectId: p })).length).toBe(20)

    corrupt = false
    await waitFor(async () => (await db.records(model).count()) === 50, 5000, 'the rest of the load')
    await settle(client)
    await expectServerState(db, p)
    // The load resumed from the stored checkpoint: "0" was asked for once.
    const pulls = pullsFor(since, (where) => where.projectId === p)
    expect(pulls.filter((r) => r.checkpoint === '0')).toHaveLength(1)
    errorSub.unsubscribe()
    sub.unsubscribe()
  })
})

describe('find$ over a synced subset', () => {
  it('emits the right results after the initial load, live changes, local writes, deletes and evictions', async () => {
    const p = project()
    await seed(p, 45)
    const writer = testClient(server)
    const reader = testClient(server)
    clients.push(writer, reader)
    const latest: { top?: Array<Record<string, unknown>>; done?: Array<Record<string, unknown>> } = {}
    const subs = [
      reader
        .collection('todos')
        .find$({ projectId: p }, { orderBy: '-likes', limit: 5 })
        .subscribe((rows) => (latest.top = rows)),
      reader
        .collection('todos')
        .find$({ projectId: p, done: true }, { orderBy: 'title' })
        .subscribe((rows) => (latest.done = rows)),
      writer.collection('todos').find$({ projectId: p }).subscribe(),
    ]
    await settle(reader)
    await settle(writer)
    /** The results as the server's data says they must be. */
    const expected = async () => {
      const rows = [...(await serverRecords(p)).values()].map((r) => r.record)
      const byUid = (a: Record<string, unknown>, b: Record<string, unknown>) => (a.uid! < b.uid! ? -1 : 1)
      const top = rows
        .sort((a, b) => (b.likes as number) - (a.likes as number) || byUid(a, b))
        .slice(0, 5)
        .map((r) => `${r.uid}:${r.likes}:${r.title}`)
      const done = rows
        .filter((r) => r.done === true)
        .sort((a, b) => (a.title! < b.title! ? -1 : a.title! > b.title! ? 1 : byUid(a, b)))
        .map((r) => `${r.uid}:${r.title}`)
      return { top, done }
    }
    const shown = () => ({
      top: latest.top?.map((r) => `${r.uid}:${r.likes}:${r.title}`),
      done: latest.done?.map((r) => `${r.uid}:${r.title}`),
    })
    const converges = async (what: string) => {
      let want: unknown
      await waitFor(
        async () => {
          want = await expected()
          return JSON.stringify(shown()) === JSON.stringify(want)
        },
        5000,
        what,
      ).catch((error) => {
        throw new Error(
          `${(error as Error).message}: shown ${JSON.stringify(shown())}, want ${JSON.stringify(want)}`,
        )
      })
    }
    await converges('the initial load')
    const created = await writer
      .collection('todos')
      .create({ title: 'aaa first', projectId: p, likes: 0, done: true })
    await writer.collection('todos').increment(created.uid, 'likes', 50)
    await converges('a live create and increment into the top window')
    const top = latest.top![0]!
    await reader.collection('todos').update(top.uid as string, { title: 'zzz edited here', done: true })
    await reader.collection('todos').increment(top.uid as string, 'likes', -60)
    await settle(reader)
    await converges('local writes moving a row out of the top window')
    await service().delete({ uid: latest.top![1]!.uid as string }, {})
    await converges('a server delete inside the window')
    await service().update({ uid: latest.top![0]!.uid as string, patch: { projectId: `${p}-gone` } }, {})
    await converges('an eviction from the window')
    await writer.collection('todos').delete(latest.done![0]!.uid as string)
    await converges('a live delete from another client')
    for (const sub of subs) sub.unsubscribe()
  })
})

describe('page sizes', () => {
  it('asks for a small first page, then full pages, and stores every record', async () => {
    const p = project()
    await seed(p, 23)
    const since = server.requests.length
    const client = testClient(server, { pageSize: 10, firstPageSize: 4 })
    clients.push(client)
    const subscription = client.collection('todos').find$({ projectId: p }).subscribe()
    try {
      await settle(client)
      const limits = pullsFor(since, (where) => where.projectId === p).map((payload) => payload.limit)
      // 4, then 10s until the 23 records and the log are read.
      expect(limits[0]).toBe(4)
      expect(limits.slice(1).every((limit) => limit === 10)).toBe(true)
      expect(limits.length).toBeGreaterThanOrEqual(3)
      expect(await client.collection('todos').count({ projectId: p })).toBe(23)
    } finally {
      subscription.unsubscribe()
    }
  })

  it('a first page larger than a page is a page', async () => {
    const p = project()
    await seed(p, 5)
    const since = server.requests.length
    const client = testClient(server, { pageSize: 3, firstPageSize: 50 })
    clients.push(client)
    const subscription = client.collection('todos').find$({ projectId: p }).subscribe()
    try {
      await settle(client)
      const limits = pullsFor(since, (where) => where.projectId === p).map((payload) => payload.limit)
      expect(limits[0]).toBe(3)
      expect(await client.collection('todos').count({ projectId: p })).toBe(5)
    } finally {
      subscription.unsubscribe()
    }
  })

  it('refuses page sizes that are not positive integers, with CLIENT_CONFIG', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '10' as unknown as number]) {
      for (const key of ['pageSize', 'firstPageSize'] as const) {
        expect(() => testClient(server, { [key]: bad })).toThrow(
          expect.objectContaining({ code: 'CLIENT_CONFIG', message: expect.stringContaining(key) }),
        )
      }
    }
  })
})
