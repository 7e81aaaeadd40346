import { eq } from 'drizzle-orm'
import { io } from 'socket.io-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { TidesyncSocket } from '../core/sync/transport.js'
import type { SyncStatus } from '../core/types.js'
import { idle, online, settle, statusWhere, type TestClient, testClient } from './helpers/clients.js'
import { waitFor } from './helpers/idb.js'
import { todos } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

let server: TestServer
const clients: TestClient[] = []
const track = (client: TestClient) => {
  clients.push(client)
  return client
}

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`
const serverTodos = (projectId: string) =>
  server.db.select().from(todos).where(eq(todos.projectId, projectId)).orderBy(todos.title)

describe('sync with a real server', () => {
  it('pushes offline creates, updates and deletes on reconnect', async () => {
    const p = project()
    const a = track(testClient(server))
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await settle(a)
    const keep = await a.collection('todos').create({ title: 'keep', projectId: p })
    const gone = await a.collection('todos').create({ title: 'gone', projectId: p })
    await settle(a)
    expect((await serverTodos(p)).map((t) => t.title)).toEqual(['gone', 'keep'])

    a.goOffline()
    await a.collection('todos').update(keep.uid, { title: 'kept', done: true })
    await a.collection('todos').delete(gone.uid)
    await a.collection('todos').create({ title: 'new', projectId: p, tags: ['x'] })
    await a.collection('todos').increment(keep.uid, 'likes', 5)
    expect(a.status.online).toBe(false)
    await waitFor(() => a.status.pending === 4, 2000, '4 pending')
    expect((await serverTodos(p)).map((t) => t.title)).toEqual(['gone', 'keep'])

    await settle(a)
    const rows = await serverTodos(p)
    expect(rows.map((t) => [t.title, t.done, t.likes, t.tags])).toEqual([
      ['kept', true, 5, null],
      ['new', false, 0, ['x']],
    ])
    expect(
      (await a.collection('todos').find({ projectId: p }, { orderBy: 'title' })).map((t) => t.title),
    ).toEqual(['kept', 'new'])
    expect(a.status.error).toBeNull()
    expect(a.status.lastSyncedAt).toBeInstanceOf(Date)
    sub.unsubscribe()
  })

  it('reports syncing from the first push of a reconnect until its last subset synced', async () => {
    const p = project()
    const a = track(testClient(server, { online: false }))
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await a.collection('todos').create({ title: 'queued', projectId: p })
    await statusWhere(a, (status) => status.pending === 1, 5000, 'pending write')
    const seen: SyncStatus[] = []
    const recording = a.status$.subscribe((status) => seen.push(status))
    a.goOnline()
    await idle(a)
    // Idle came only after the whole cycle: the push, then the subset's subscription and sync.
    const subscribed = server.requests.some(
      (request) =>
        request.event === 'subscribe' && (request.payload.where as { projectId?: string }).projectId === p,
    )
    expect(subscribed).toBe(true)
    expect(await a.collection('todos').find({ projectId: p })).toHaveLength(1)
    recording.unsubscribe()
    const firstIdle = seen.findIndex((status) => status.online && !status.syncing && status.pending === 0)
    expect(seen.slice(firstIdle + 1).some((status) => status.syncing)).toBe(false)
    expect(seen.some((status) => status.online && status.syncing && status.pending === 1)).toBe(true)
    expect((await a.activeSubsets()).length).toBe(1)
    expect(await serverTodos(p)).toHaveLength(1)
    sub.unsubscribe()
  })

  it('delivers live pushes between two clients', async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    let seenByB: string[] = []
    const subA = a.collection('todos').find$({ projectId: p }).subscribe()
    const subB = b
      .collection('todos')
      .find$({ projectId: p }, { orderBy: 'title' })
      .subscribe((rows) => {
        seenByB = rows.map((row) => `${row.title}:${row.likes}`)
      })
    await settle(a)
    await settle(b)
    const todo = await a.collection('todos').create({ title: 'hello', projectId: p })
    await waitFor(() => seenByB.join() === 'hello:0', 5000, 'b sees the create')
    await a.collection('todos').increment(todo.uid, 'likes', 2)
    await a.collection('todos').update(todo.uid, { title: 'hello!' })
    await waitFor(() => seenByB.join() === 'hello!:2', 5000, 'b sees the update and increment')
    await a.collection('todos').delete(todo.uid)
    await waitFor(() => seenByB.length === 0, 5000, 'b sees the delete')
    subA.unsubscribe()
    subB.unsubscribe()
  })

  it('applies a burst of live pushes in order (creates, updates, increments, deletes)', async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const subs = [a, b].map((c) => c.collection('todos').find$({ projectId: p }).subscribe())
    await settle(a)
    await settle(b)
    const writes: Promise<unknown>[] = []
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, i) => a.collection('todos').create({ title: `r${i}`, projectId: p })),
    )
    for (const [i, todo] of created.entries()) {
      writes.push(a.collection('todos').update(todo.uid, { title: `r${i} v2` }))
      writes.push(a.collection('todos').increment(todo.uid, 'likes', i))
      if (i % 3 === 0) writes.push(a.collection('todos').delete(todo.uid))
      else writes.push(a.collection('todos').update(todo.uid, { done: true }))
    }
    await Promise.all(writes)
    await settle(a)
    const expected = created
      .map((todo, i) => ({ uid: todo.uid, title: `r${i} v2`, likes: i, done: true, i }))
      .filter(({ i }) => i % 3 !== 0)
      .map(({ i: _i, ...rest }) => rest)
      .sort((x, y) => (x.uid < y.uid ? -1 : 1))
    const view = async (c: TestClient) =>
      (await c.collection('todos').find({ projectId: p })).map(({ uid, title, likes, done }) => ({
        uid,
        title,
        likes,
        done,
      }))
    await waitFor(
      async () => JSON.stringify(await view(b)) === JSON.stringify(expected),
      10_000,
      'b applied the burst',
    )
    expect(await view(a)).toEqual(expected)
    // No deleted record came back on b, and a fresh pull agrees with what the pushes built.
    await settle(b)
    expect(await view(b)).toEqual(expected)
    for (const sub of subs) sub.unsubscribe()
  })

  it('merges concurrent offline edits of different fields of one record', async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const subs = [a, b].map((c) => c.collection('todos').find$({ projectId: p }).subscribe())
    await settle(a)
    const todo = await a.collection('todos').create({ title: 'draft', projectId: p })
    await settle(a)
    await settle(b)
    expect(await b.collection('todos').get(todo.uid)).toMatchObject({ title: 'draft' })
    a.goOffline()
    b.goOffline()
    await a.collection('todos').update(todo.uid, { title: 'final' })
    await b.collection('todos').update(todo.uid, { done: true })
    await settle(b)
    await settle(a)
    await settle(b)
    for (const client of [a, b])
      expect(await client.collection('todos').get(todo.uid)).toMatchObject({ title: 'final', done: true })
    const [row] = await server.db.select().from(todos).where(eq(todos.uid, todo.uid))
    expect(row).toMatchObject({ title: 'final', done: true })
    for (const sub of subs) sub.unsubscribe()
  })

  it('adds up counter increments from two offline clients', async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const subs = [a, b].map((c) => c.collection('todos').find$({ projectId: p }).subscribe())
    await settle(a)
    const todo = await a.collection('todos').create({ title: 'likes', projectId: p })
    await settle(a)
    await settle(b)
    a.goOffline()
    b.goOffline()
    for (let i = 0; i < 3; i++) await a.collection('todos').increment(todo.uid, 'likes', 1)
    await b.collection('todos').increment(todo.uid, 'likes', 10)
    expect((await a.collection('todos').get(todo.uid))?.likes).toBe(3)
    expect((await b.collection('todos').get(todo.uid))?.likes).toBe(10)
    await Promise.all([settle(a), settle(b)])
    await settle(a)
    const [row] = await server.db.select().from(todos).where(eq(todos.uid, todo.uid))
    expect(row?.likes).toBe(13)
    await waitFor(async () => (await a.collection('todos').get(todo.uid))?.likes === 13, 5000, 'a shows 13')
    await waitFor(async () => (await b.collection('todos').get(todo.uid))?.likes === 13, 5000, 'b shows 13')
    for (const sub of subs) sub.unsubscribe()
  })

  it('drops a record deleted on the server while offline, and never brings it back', async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const subs = [a, b].map((c) => c.collection('todos').find$({ projectId: p }).subscribe())
    await settle(a)
    const doomed = await a.collection('todos').create({ title: 'doomed', projectId: p })
    const other = await a.collection('todos').create({ title: 'other', projectId: p })
    await settle(a)
    await settle(b)
    a.goOffline()
    await b.collection('todos').delete(doomed.uid)
    await settle(b)
    // Offline, a edits the record the server no longer has.
    await a.collection('todos').update(doomed.uid, { title: 'edited offline' })
    await a.collection('todos').increment(doomed.uid, 'likes', 1)
    await settle(a)
    expect(await a.collection('todos').get(doomed.uid)).toBeUndefined()
    expect(await a.collection('todos').get(other.uid)).toBeDefined()
    // More syncs, another client writing, a reload: it stays gone everywhere.
    await b.collection('todos').update(other.uid, { title: 'other 2' })
    await settle(b)
    await settle(a)
    const reopened = track(
      testClient(server, { dbName: (a as unknown as { options: { dbName: string } }).options.dbName }),
    )
    await a.close()
    const sub = reopened.collection('todos').find$({ projectId: p }).subscribe()
    await settle(reopened)
    expect(await reopened.collection('todos').get(doomed.uid)).toBeUndefined()
    expect((await reopened.collection('todos').get(other.uid))?.title).toBe('other 2')
    expect(await server.db.select().from(todos).where(eq(todos.uid, doomed.uid))).toEqual([])
    sub.unsubscribe()
    for (const s of subs) s.unsubscribe()
  })

  it('evicts a record that leaves the where (live and after being offline), without deleting it', async () => {
    const p = project()
    const q = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const subA = a.collection('todos').find$({ projectId: p }).subscribe()
    const subB = b
      .collection('todos')
      .find$({ projectId: { in: [p, q] } })
      .subscribe()
    await settle(a)
    await settle(b)
    const live = await b.collection('todos').create({ title: 'moves live', projectId: p })
    const later = await b.collection('todos').create({ title: 'moves later', projectId: p })
    await settle(b)
    await waitFor(
      async () => (await a.collection('todos').find({ projectId: p })).length === 2,
      5000,
      'a has both',
    )
    await b.collection('todos').update(live.uid, { projectId: q })
    await waitFor(
      async () => (await a.collection('todos').get(live.uid)) === undefined,
      5000,
      'live eviction',
    )
    a.goOffline()
    await b.collection('todos').update(later.uid, { projectId: q })
    await settle(b)
    expect(await a.collection('todos').get(later.uid)).toBeDefined()
    await settle(a)
    expect(await a.collection('todos').get(later.uid)).toBeUndefined()
    const rows = await serverTodos(q)
    expect(rows.map((row) => row.title)).toEqual(['moves later', 'moves live'])
    // Evicted, not deleted: a subset that includes q brings them back.
    const subQ = a.collection('todos').find$({ projectId: q }).subscribe()
    await settle(a)
    expect((await a.collection('todos').find({ projectId: q })).length).toBe(2)
    for (const sub of [subA, subB, subQ]) sub.unsubscribe()
  })

  it('pushes the changes of a previous session after a reload', async () => {
    const p = project()
    const dbName = `reload-${p}`
    const first = testClient(server, { dbName, online: false })
    const todo = await first.collection('todos').create({ title: 'before reload', projectId: p })
    await first.collection('todos').increment(todo.uid, 'likes', 4)
    await waitFor(() => first.status.pending === 2, 2000, 'two pending')
    await first.close()
    expect(await serverTodos(p)).toEqual([])
    const second = track(testClient(server, { dbName }))
    await online(second)
    await waitFor(() => second.status.pending === 0, 5000, 'pushed after reload')
    expect((await serverTodos(p)).map((row) => [row.title, row.likes])).toEqual([['before reload', 4]])
  })

  it('keeps lastSyncedAt across a reload: shown before any sync', async () => {
    const p = project()
    const dbName = `last-synced-${p}`
    const first = testClient(server, { dbName })
    const sub = first.collection('todos').find$({ projectId: p }).subscribe()
    await settle(first)
    const syncedAt = first.status.lastSyncedAt
    expect(syncedAt).toBeInstanceOf(Date)
    sub.unsubscribe()
    await first.close()

    // Offline: no sync can happen, yet the time of the last one is known at once.
    const second = track(testClient(server, { dbName, online: false }))
    await second.ready
    expect(second.status.online).toBe(false)
    expect(second.status.lastSyncedAt).toBeInstanceOf(Date)
    expect(second.status.lastSyncedAt!.getTime()).toBe(syncedAt!.getTime())

    // A fresh database has never synced.
    const fresh = track(testClient(server, { online: false }))
    await fresh.ready
    expect(fresh.status.lastSyncedAt).toBeNull()
  })

  it('lets two tabs on one database push each change exactly once', async () => {
    const p = project()
    const dbName = `tabs-${p}`
    const tab1 = track(testClient(server, { dbName, online: false }))
    const tab2 = track(testClient(server, { dbName, online: false }))
    const subs = [tab1, tab2].map((tab) => tab.collection('todos').find$({ projectId: p }).subscribe())
    const todo = await tab1.collection('todos').create({ title: 'shared', projectId: p })
    const writes: Promise<unknown>[] = []
    for (let i = 0; i < 15; i++) {
      writes.push(tab1.collection('todos').increment(todo.uid, 'likes', 1))
      writes.push(tab2.collection('todos').increment(todo.uid, 'likes', 1))
      writes.push(tab2.collection('todos').create({ title: `t2-${i}`, projectId: p }))
    }
    await Promise.all(writes)
    await waitFor(
      () => tab1.status.pending === 46 && tab2.status.pending === 46,
      3000,
      '46 pending in both tabs',
    )
    tab1.goOnline()
    tab2.goOnline()
    await Promise.all([online(tab1), online(tab2)])
    await waitFor(() => tab1.status.pending === 0 && tab2.status.pending === 0, 10_000, 'outbox drained')
    const clientId = await tab1.clientId()
    expect(await tab2.clientId()).toBe(clientId)
    const ids = server.pushedChangeIds.get(clientId) ?? []
    expect(ids).toHaveLength(46)
    expect(new Set(ids).size).toBe(46)
    const rows = await serverTodos(p)
    expect(rows).toHaveLength(16)
    expect(rows.find((row) => row.uid === todo.uid)?.likes).toBe(30)
    for (const sub of subs) sub.unsubscribe()
  })
})

describe('sync paths', () => {
  const syncRequests = (since: number, projectId: string) =>
    server.requests
      .slice(since)
      .filter(
        (request) =>
          request.event.startsWith('sync:') &&
          request.event !== 'sync:push' &&
          (request.payload.where as { projectId?: string } | undefined)?.projectId === projectId,
      )
      .map((request) =>
        request.event === 'sync:pull' ? `pull:${request.payload.checkpoint === '0' ? '0' : 'cp'}` : 'full',
      )

  it('pulls a delta when a checkpoint exists and reconciles in full otherwise', async () => {
    const p = project()
    const writer = track(testClient(server))
    const first = await writer.collection('todos').create({ title: 'first', projectId: p })
    await writer.collection('todos').create({ title: 'second', projectId: p })
    await settle(writer)

    // First run with nothing local: the paged initial load (a pull from checkpoint "0").
    const a = track(testClient(server))
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    let since = server.requests.length
    await settle(a)
    // (settle's own syncNow may add a delta pull after it, depending on timing)
    expect(syncRequests(since, p)[0]).toBe('pull:0')
    expect(syncRequests(since, p)).not.toContain('full')
    expect(await a.collection('todos').find({ projectId: p })).toHaveLength(2)

    // Reconnect with a checkpoint: a delta pull only, which brings the change made meanwhile.
    a.goOffline()
    await writer.collection('todos').update(first.uid, { title: 'first (edited)' })
    await settle(writer)
    since = server.requests.length
    await settle(a)
    expect(new Set(syncRequests(since, p))).toEqual(new Set(['pull:cp']))
    expect((await a.collection('todos').get(first.uid))?.title).toBe('first (edited)')

    // A checkpoint the server no longer accepts: a full reconcile, and the data stays right.
    a.goOffline()
    await writer.collection('todos').delete(first.uid)
    await settle(writer)
    server.failNext('sync:pull', 1, { code: 'CHECKPOINT_EXPIRED', message: 'checkpoint pruned' })
    since = server.requests.length
    await settle(a)
    expect(syncRequests(since, p).slice(0, 2)).toEqual(['pull:cp', 'full'])
    expect((await a.collection('todos').find({ projectId: p })).map((row) => row.title)).toEqual(['second'])
    expect(await a.collection('todos').get(first.uid)).toBeUndefined()

    // Local records of a subset never synced (made offline): a full reconcile sends them.
    const q = project()
    const b = track(testClient(server, { online: false }))
    const local = await b.collection('todos').create({ title: 'local', projectId: q })
    const subB = b.collection('todos').find$({ projectId: q }).subscribe()
    since = server.requests.length
    await settle(b)
    expect(syncRequests(since, q)[0]).toBe('full')
    const full = server.requests.slice(since).find((request) => request.event === 'sync:full')
    expect(Object.keys(full?.payload.metadata as object)).toEqual([local.uid])
    expect((await serverTodos(q)).map((row) => row.title)).toEqual(['local'])
    sub.unsubscribe()
    subB.unsubscribe()
  })
})

describe('connection options', () => {
  it('works on a socket the app made, and leaves it open on close', async () => {
    const p = project()
    const socket = io(server.url, { autoConnect: false, transports: ['websocket'] }) as TidesyncSocket
    try {
      const client = track(testClient(server, { socket, url: undefined }))
      const sub = client.collection('todos').find$({ projectId: p }).subscribe()
      await settle(client)
      const todo = await client.collection('todos').create({ title: 'via app socket', projectId: p })
      await settle(client)
      expect((await serverTodos(p)).map((row) => row.uid)).toEqual([todo.uid])
      sub.unsubscribe()
      await client.close()
      expect(socket.connected).toBe(true)
    } finally {
      socket.disconnect()
    }
  })

  it('reports a refused handshake (auth) as UNAUTHORIZED and keeps writes queued', async () => {
    const p = project()
    const refused = track(testClient(server, { auth: { token: 'bad' } }))
    await statusWhere(refused, (status) => status.error?.code === 'UNAUTHORIZED', 5000, 'UNAUTHORIZED')
    expect(refused.status.online).toBe(false)
    await refused.collection('todos').create({ title: 'waits', projectId: p })
    await statusWhere(refused, (status) => status.pending === 1, 5000, 'pending write')
    const accepted = track(testClient(server, { auth: { token: 'good' } }))
    await settle(accepted)
    expect(accepted.status.error).toBeNull()
    expect(await serverTodos(p)).toEqual([])
  })
})
