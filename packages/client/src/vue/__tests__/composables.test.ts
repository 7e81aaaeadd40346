import { afterEach, describe, expect, it } from 'vitest'
import { defineComponent, effectScope, h, nextTick, ref } from 'vue'
import { uniqueDbName, waitFor } from '../../__tests__/helpers/idb.js'
import { modelOptions, schema, todos as todosTable } from '../../__tests__/helpers/schema.js'
import { createClient, type TidesyncClient } from '../../core/client.js'
import { TidesyncClientError } from '../../core/errors.js'
import type { UseSyncedQueryReturn, UseSyncStatusReturn } from '../index.js'
import { TidesyncPlugin, useSyncedQuery, useSyncStatus } from '../index.js'
import { createTestApp } from './renderer.js'

type Todo = typeof todosTable.$inferSelect
const clients: TidesyncClient<typeof schema>[] = []
const silent = { debug() {}, info() {}, warn() {}, error() {} }

function offlineClient() {
  const client = createClient({
    url: 'http://127.0.0.1:9',
    schema,
    models: modelOptions,
    dbName: uniqueDbName(),
    online: false,
    logger: silent,
  })
  clients.push(client)
  return client
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})

describe('Vue composables', () => {
  it('names the fix, as a CLIENT_CONFIG error, when no client was provided', () => {
    const expectConfigError = (failure: unknown, fix: string) => {
      expect(failure).toBeInstanceOf(TidesyncClientError)
      expect((failure as TidesyncClientError).code).toBe('CLIENT_CONFIG')
      expect((failure as Error).message).toContain(fix)
    }
    const noClient = "No tidesync client found in Vue context, use 'TidesyncPlugin'"
    const scope = effectScope()
    let outsideSetup: unknown
    try {
      scope.run(() => useSyncedQuery('todos'))
    } catch (error) {
      outsideSetup = error
    }
    scope.stop()
    expectConfigError(outsideSetup, noClient)
    expectConfigError(outsideSetup, 'app.use(TidesyncPlugin, { client })')
    let inSetup: unknown
    const { mount } = createTestApp(
      defineComponent({
        setup() {
          try {
            useSyncStatus()
          } catch (error) {
            inSetup = error
          }
          return () => null
        },
      }),
    )
    mount()
    expectConfigError(inSetup, noClient)
    // The plugin without a client.
    const { app } = createTestApp(defineComponent({ render: () => null }))
    let pluginFailure: unknown
    try {
      app.use(TidesyncPlugin, {} as never)
    } catch (error) {
      pluginFailure = error
    }
    expectConfigError(pluginFailure, 'TidesyncPlugin needs a client: app.use(TidesyncPlugin, { client: ')
  })

  it('mounts, follows a reactive where and stops on unmount', async () => {
    const client = offlineClient()
    const todos = client.collection('todos')
    await todos.create({ title: 'a1', projectId: 'a' })
    await todos.create({ title: 'b1', projectId: 'b' })
    const project = ref('a')
    let query!: UseSyncedQueryReturn<Todo>
    let status!: UseSyncStatusReturn
    const { app, mount, unmount } = createTestApp(
      defineComponent({
        setup() {
          query = useSyncedQuery(todosTable, () => ({ projectId: project.value }), { orderBy: 'title' })
          status = useSyncStatus()
          return () =>
            h(
              'ul',
              query.data.value.map((todo) => h('li', todo.title)),
            )
        },
      }),
    )
    app.use(TidesyncPlugin, { client })
    mount()
    expect(query.isLoading.value).toBe(true)
    await waitFor(() => query.data.value.map((t) => t.title).join() === 'a1', 2000, 'project a')
    expect(query.isLoading.value).toBe(false) // offline: local data is all there is
    expect(query.error.value).toBeNull()
    await waitFor(async () => (await client.activeSubsets()).length === 1, 2000, 'one active subset')

    await todos.create({ title: 'a2', projectId: 'a' })
    await waitFor(() => query.data.value.map((t) => t.title).join() === 'a1,a2', 2000, 'live a2')

    project.value = 'b'
    await nextTick()
    await waitFor(
      () => query.data.value.map((t) => t.title).join() === 'b1',
      2000,
      'project b after where changed',
    )
    const subsets = await client.activeSubsets()
    expect(subsets).toEqual([{ model: 'todos', where: { projectId: 'b' }, watchers: 2 }])
    await waitFor(() => status.pending.value === 3, 2000, 'pending 3')
    expect(status.online.value).toBe(false)

    unmount()
    await waitFor(
      async () => (await client.activeSubsets()).length === 0,
      2000,
      'subsets released on unmount',
    )
    await todos.create({ title: 'b2', projectId: 'b' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(query.data.value.map((t) => t.title)).toEqual(['b1'])
  })

  it('accepts a model name and a ref where in an effect scope, and reports bad wheres as errors', async () => {
    const client = offlineClient()
    await client.collection('todos').create({ title: 'x', projectId: 'p' })
    const where = ref<Record<string, unknown>>({ projectId: 'p' })
    const scope = effectScope()
    const { app } = createTestApp(defineComponent({ render: () => null }))
    app.use(TidesyncPlugin, { client })
    const query = app.runWithContext(() => scope.run(() => useSyncedQuery('todos', where))!)
    await waitFor(() => query.data.value.length === 1, 2000, 'one record')
    where.value = { nope: 1 }
    await nextTick()
    await waitFor(() => query.error.value?.code === 'CLIENT_UNKNOWN_FIELD', 2000, 'typed error')
    expect(query.isLoading.value).toBe(false)
    scope.stop()
    await waitFor(async () => (await client.activeSubsets()).length === 0, 2000, 'released')
  })
})
