import { Dexie } from 'dexie'
import { eq } from 'drizzle-orm'
import { pgTable, text, uuid } from 'drizzle-orm/pg-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { effectScope } from 'vue'
import { createClient } from '../core/client.js'
import { type TidesyncClientError, TidesyncServerError } from '../core/errors.js'
import type { SyncProgress } from '../core/types.js'
import { useSyncedQuery } from '../vue/index.js'
import { online, settle, silentLogger, testClient } from './helpers/clients.js'
import { uniqueDbName, waitFor } from './helpers/idb.js'
import { notes, todos } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

let server: TestServer
const closers: Array<() => Promise<void>> = []
const track = <C extends { close(): Promise<void> }>(client: C): C => {
  closers.push(() => client.close())
  return client
}

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`

describe('errors', () => {
  it('surfaces a server error answer, keeps the write pending and retries it', async () => {
    const p = project()
    const client = track(testClient(server))
    const errors: TidesyncClientError[] = []
    client.errors$.subscribe((error) => errors.push(error))
    const scope = effectScope()
    const seenByComposable: string[] = []
    const query = scope.run(() =>
      useSyncedQuery(
        todos,
        { projectId: p },
        { client, onError: (error) => seenByComposable.push(error.code) },
      ),
    )!
    await settle(client)
    server.failNext('sync:push', 3, { code: 'UNAVAILABLE', message: 'database unreachable', retryable: true })
    const todo = await client.collection('todos').create({ title: 'stubborn', projectId: p })
    await waitFor(() => client.status.error?.code === 'UNAVAILABLE', 5000, 'error in status$')
    expect(query.error.value?.code).toBe('UNAVAILABLE')
    expect(client.status.pending).toBe(1)
    expect(query.data.value.map((row) => row.uid)).toEqual([todo.uid])
    await waitFor(() => client.status.pending === 0, 10_000, 'retried until pushed')
    expect(await server.db.select().from(todos).where(eq(todos.uid, todo.uid))).toHaveLength(1)
    await settle(client)
    expect(client.status.error).toBeNull()
    expect(query.error.value).toBeNull()
    expect(errors.filter((error) => error.code === 'UNAVAILABLE').length).toBeGreaterThanOrEqual(1)
    expect(seenByComposable).toContain('UNAVAILABLE')
    scope.stop()
  })

  it('drops a change the server rejects for good, restores the record and reports why', async () => {
    // This client believes `notes` has a `secret` column; the server does not.
    const notesPlus = pgTable('notes', {
      uid: uuid('uid').primaryKey(),
      body: text('body').notNull(),
      secret: text('secret'),
    })
    const client = track(
      createClient({
        url: server.url,
        schema: { notes: notesPlus },
        dbName: uniqueDbName(),
        logger: silentLogger,
        retry: { minDelayMs: 20, maxDelayMs: 200 },
        socketOptions: { transports: ['websocket'] },
      }),
    )
    const errors: TidesyncClientError[] = []
    client.errors$.subscribe((error) => errors.push(error))
    await waitFor(() => client.status.online, 5000, 'online')
    const notesCollection = client.collection('notes')
    const good = await notesCollection.create({ body: 'fine' })
    const bad = await notesCollection.create({ body: 'leaky', secret: 'x' })
    await waitFor(() => client.status.pending === 0, 5000, 'outbox answered')
    await waitFor(() => errors.some((error) => error.code === 'UNKNOWN_COLUMN'), 5000, 'rejection reported')
    const rejection = errors.find((error) => error.code === 'UNKNOWN_COLUMN') as TidesyncClientError & {
      change?: { uid: string }
    }
    expect(rejection.change?.uid).toBe(bad.uid)
    await waitFor(
      async () => (await notesCollection.get(bad.uid)) === undefined,
      5000,
      'rejected create undone locally',
    )
    // The good create left `secret` out (null locally), so it did not trip over the column.
    expect(await notesCollection.get(good.uid)).toMatchObject({ body: 'fine', secret: null })
    expect((await server.db.select().from(notes).where(eq(notes.uid, good.uid))).length).toBe(1)
    expect((await server.db.select().from(notes).where(eq(notes.uid, bad.uid))).length).toBe(0)

    // A rejected update (the server's write check refuses it) is undone: the server's value returns.
    await notesCollection.update(good.uid, { body: 'forbidden' })
    await waitFor(() => errors.some((error) => error.code === 'FORBIDDEN'), 5000, 'forbidden reported')
    await waitFor(
      async () => (await notesCollection.get(good.uid))?.body === 'fine',
      5000,
      'rejected update undone locally',
    )
    expect(client.status.pending).toBe(0)
    const forbidden = errors.find((error) => error.code === 'FORBIDDEN')
    expect(forbidden).toBeInstanceOf(TidesyncServerError)
    expect((forbidden as TidesyncServerError).change).toMatchObject({ uid: good.uid, op: 'update' })
    const [row] = await server.db.select().from(notes).where(eq(notes.uid, good.uid))
    expect(row?.body).toBe('fine')
  })
})

describe('recovery and progress', () => {
  it('recovers from damaged local metadata and a damaged checkpoint through a full reconcile', async () => {
    const p = project()
    const dbName = uniqueDbName()
    const a = testClient(server, { dbName })
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await settle(a)
    const [one, two, three] = [
      await a.collection('todos').create({ title: 'one', projectId: p }),
      await a.collection('todos').create({ title: 'two', projectId: p }),
      await a.collection('todos').create({ title: 'three', projectId: p }),
    ]
    await settle(a)
    sub.unsubscribe()
    await a.close()

    // Meanwhile another client changes the server's state.
    const b = track(testClient(server))
    const subB = b.collection('todos').find$({ projectId: p }).subscribe()
    await settle(b)
    await b.collection('todos').update(two!.uid, { title: 'two (server)' })
    await b.collection('todos').delete(three!.uid)
    const four = await b.collection('todos').create({ title: 'four', projectId: p })
    await settle(b)
    subB.unsubscribe()

    // Damage a's database: meta rows gone or garbage, a stale local value, a garbage checkpoint.
    const raw = new Dexie(dbName)
    await raw.open()
    await raw.table('m_todos').clear()
    await raw.table('m_todos').put({ uid: one!.uid, rev: 'broken' })
    await raw.table('r_todos').update(two!.uid, { title: 'stale' })
    const checkpoints = await raw.table('_checkpoints').toArray()
    expect(checkpoints.length).toBeGreaterThan(0)
    for (const row of checkpoints) await raw.table('_checkpoints').put({ ...row, checkpoint: 'garbage' })
    raw.close()

    const again = track(testClient(server, { dbName }))
    const subAgain = again.collection('todos').find$({ projectId: p }).subscribe()
    await settle(again)
    const local = await again.collection('todos').find({ projectId: p }, { orderBy: 'title' })
    expect(local.map((row) => row.title)).toEqual(['four', 'one', 'two (server)'])
    expect(local.map((row) => row.uid).sort()).toEqual([one!.uid, two!.uid, four.uid].sort())
    // And it keeps syncing normally afterwards (delta from the new checkpoint).
    await b.collection('todos').update(one!.uid, { done: true })
    await settle(b)
    await settle(again)
    expect((await again.collection('todos').get(one!.uid))?.done).toBe(true)
    subAgain.unsubscribe()
  })

  it('pushes records only the client has when a full reconcile finds them (a lost outbox)', async () => {
    const p = project()
    const dbName = uniqueDbName()
    const offline = testClient(server, { dbName, online: false })
    const kept = await offline.collection('todos').create({ title: 'only local', projectId: p })
    await offline.close()
    // The outbox is lost (say, cleared by a bad migration): the record exists only in this database.
    const raw = new Dexie(dbName)
    await raw.open()
    await raw.table('_outbox').clear()
    raw.close()
    const again = track(testClient(server, { dbName }))
    const sub = again.collection('todos').find$({ projectId: p }).subscribe()
    await settle(again)
    await settle(again)
    const rows = await server.db.select().from(todos).where(eq(todos.projectId, p))
    expect(rows.map((row) => [row.uid, row.title, row.dueAt, row.tags])).toEqual([
      [kept.uid, 'only local', null, null],
    ])
    sub.unsubscribe()
  })

  it('loads a large subset in pages and reports progress', async () => {
    const p = project()
    const writer = track(testClient(server, { pushBatchSize: 100 }))
    for (let i = 0; i < 35; i++) await writer.collection('todos').create({ title: `r${i}`, projectId: p })
    await settle(writer)
    const reader = track(testClient(server, { pageSize: 10, chunkSize: 10, online: false }))
    const progress: SyncProgress[] = []
    reader.status$.subscribe((status) => {
      if (status.progress) progress.push(status.progress)
    })
    const sub = reader.collection('todos').find$({ projectId: p }).subscribe()
    reader.goOnline()
    await online(reader)
    await settle(reader)
    expect(await reader.collection('todos').find({ projectId: p })).toHaveLength(35)
    expect(progress.length).toBeGreaterThanOrEqual(3)
    expect(progress.at(-1)).toMatchObject({ model: 'todos', loaded: 35, total: 35, ratio: 1 })
    expect(progress.map((item) => item.ratio)).toEqual(
      [...progress.map((item) => item.ratio)].sort((x, y) => x - y),
    )
    expect(reader.status.progress).toBeNull()
    sub.unsubscribe()
  })
})
