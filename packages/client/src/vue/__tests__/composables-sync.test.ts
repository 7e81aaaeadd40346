import { eq } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { defineComponent, h, nextTick, ref } from 'vue'
import { idle, settle, type TestClient, testClient } from '../../__tests__/helpers/clients.js'
import { waitFor } from '../../__tests__/helpers/idb.js'
import { todos as todosTable } from '../../__tests__/helpers/schema.js'
import { startServer, type TestServer } from '../../__tests__/helpers/server.js'
import type { UseSyncedQueryReturn, UseSyncStatusReturn } from '../index.js'
import { TidesyncPlugin, useSyncedQuery, useSyncStatus } from '../index.js'
import { createTestApp } from './renderer.js'

type Todo = typeof todosTable.$inferSelect

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

const project = () => `v-${Math.random().toString(36).slice(2, 10)}`
const titles = (query: UseSyncedQueryReturn<Todo>) => query.data.value.map((todo) => todo.title).join()

describe('Vue composables against a real server', () => {
  it('syncs the subset, re-syncs when where changes, follows live pushes and stops on unmount', async () => {
    const [p, q] = [project(), project()]
    const writer = track(testClient(server))
    await writer.collection('todos').create({ title: 'p1', projectId: p })
    await writer.collection('todos').create({ title: 'p2', projectId: p })
    await writer.collection('todos').create({ title: 'q1', projectId: q })
    await settle(writer)

    // The reader starts with an empty database: whatever it shows came from the server.
    const reader = track(testClient(server))
    const where = ref(p)
    let query!: UseSyncedQueryReturn<Todo>
    let status!: UseSyncStatusReturn
    const { app, root, mount, unmount } = createTestApp(
      defineComponent({
        setup() {
          query = useSyncedQuery(todosTable, () => ({ projectId: where.value }), { orderBy: 'title' })
          status = useSyncStatus()
          return () =>
            h(
              'ul',
              query.data.value.map((todo) => h('li', todo.title)),
            )
        },
      }),
    )
    app.use(TidesyncPlugin, { client: reader })
    const requestsBefore = server.requests.length
    mount()
    expect(query.isLoading.value).toBe(true)
    expect(query.data.value).toEqual([])
    await waitFor(() => !query.isLoading.value && titles(query) === 'p1,p2', 5000, 'subset p from the server')
    expect(query.error.value).toBeNull()
    expect(query.status.value.online).toBe(true)
    expect(status.online.value).toBe(true)
    // The component rendered the synced data.
    const rendered = () => root.children[0]?.children.map((li) => li.children[0]?.text).join()
    await nextTick()
    expect(rendered()).toBe('p1,p2')

    // A new where: the old subset is released (unsubscribed on the server), the new one syncs.
    where.value = q
    await nextTick()
    await waitFor(() => !query.isLoading.value && titles(query) === 'q1', 5000, 'subset q from the server')
    expect(await reader.activeSubsets()).toEqual([{ model: 'todos', where: { projectId: q }, watchers: 2 }])
    await waitFor(
      () => server.requests.slice(requestsBefore).some((request) => request.event === 'unsubscribe'),
      5000,
      'the subscription of p ended on the server',
    )
    const subscribed = server.requests
      .slice(requestsBefore)
      .filter((request) => request.event === 'subscribe')
      .map((request) => (request.payload.where as { projectId: string }).projectId)
    expect(subscribed).toEqual([p, q])

    // Live pushes from another client land in `data`.
    await writer.collection('todos').create({ title: 'q2', projectId: q })
    await waitFor(() => titles(query) === 'q1,q2', 5000, 'live push')

    // useSyncStatus: the online/offline switch, pending writes, last sync.
    expect(status.lastSyncedAt.value).toBeInstanceOf(Date)
    status.goOffline()
    await waitFor(() => !status.online.value, 5000, 'offline')
    await reader.collection('todos').create({ title: 'q3', projectId: q })
    await waitFor(
      () => status.pending.value === 1 && titles(query) === 'q1,q2,q3',
      5000,
      'pending write shown',
    )
    expect(query.isLoading.value).toBe(false)
    status.goOnline()
    // Idle: the reconnect's cycle (push, then re-subscribe and sync q) is over.
    await idle(reader)
    expect(status.pending.value).toBe(0)
    const stored = await server.db.select().from(todosTable).where(eq(todosTable.projectId, q))
    expect(stored.map((row) => row.title).sort()).toEqual(['q1', 'q2', 'q3'])

    // Unmount: every subscription of the component ends.
    const unsubscribesBefore = server.requests.filter((request) => request.event === 'unsubscribe').length
    unmount()
    await waitFor(async () => (await reader.activeSubsets()).length === 0, 5000, 'subsets released')
    await waitFor(
      () => server.requests.filter((request) => request.event === 'unsubscribe').length > unsubscribesBefore,
      5000,
      'the subscription of q ended on the server',
    )
    await writer.collection('todos').create({ title: 'q4', projectId: q })
    await settle(writer)
    await reader.syncNow()
    expect(titles(query)).toBe('q1,q2,q3')
    expect(await reader.collection('todos').find({ projectId: q })).toHaveLength(3)
  })

  it("keeps each query's error its own: one failing query, one healthy, and an unrelated failure", async () => {
    const [p, q, r] = [project(), project(), project()]
    const writer = track(testClient(server))
    await writer.collection('todos').create({ title: 'p1', projectId: p })
    await writer.collection('todos').create({ title: 'q1', projectId: q })
    await settle(writer)

    const reader = track(testClient(server))
    const whereA = ref(p)
    const seen = { a: [] as string[], b: [] as string[] }
    let a!: UseSyncedQueryReturn<Todo>
    let b!: UseSyncedQueryReturn<Todo>
    let status!: UseSyncStatusReturn
    const { app, mount, unmount } = createTestApp(
      defineComponent({
        setup() {
          a = useSyncedQuery(todosTable, () => ({ projectId: whereA.value }), {
            onError: (error) => seen.a.push(error.code),
          })
          b = useSyncedQuery(todosTable, { projectId: q }, { onError: (error) => seen.b.push(error.code) })
          status = useSyncStatus()
          return () => null
        },
      }),
    )
    app.use(TidesyncPlugin, { client: reader })
    mount()
    await waitFor(
      () => !a.isLoading.value && !b.isLoading.value && titles(a) === 'p1' && titles(b) === 'q1',
      5000,
      'both queries synced',
    )

    // A client-wide failure that is no query's own: the server rejects a change to a note.
    await reader.collection('notes').create({ body: 'forbidden' })
    await waitFor(() => status.error.value?.code === 'FORBIDDEN', 5000, 'the rejection in useSyncStatus')
    await nextTick()
    expect(a.error.value).toBeNull()
    expect(b.error.value).toBeNull()
    expect(seen).toEqual({ a: [], b: [] })

    // Only query a fails: the server refuses the subscription of its new subset.
    server.failNext('subscribe', 1_000, {
      code: 'UNAVAILABLE',
      message: 'no subscriptions now',
      retryable: true,
    })
    whereA.value = r
    await waitFor(() => a.error.value?.code === 'UNAVAILABLE', 5000, "query a's own error")
    expect(a.isLoading.value).toBe(false)
    await nextTick()
    expect(b.error.value).toBeNull()
    expect(b.isLoading.value).toBe(false)
    expect(titles(b)).toBe('q1')
    expect(seen.a).toContain('UNAVAILABLE')
    expect(seen.b).toEqual([])

    // The server takes subscriptions again: a's subset syncs on retry and its error clears.
    server.failNext('subscribe', 0, { code: 'UNAVAILABLE', message: 'no subscriptions now' })
    await writer.collection('todos').create({ title: 'r1', projectId: r })
    await settle(writer)
    await waitFor(() => a.error.value === null && titles(a) === 'r1', 5000, 'query a recovered')
    expect(seen.b).toEqual([])
    unmount()
  })
})
