import { Dexie } from 'dexie'
import { filter, firstValueFrom } from 'rxjs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { uniqueDbName, waitFor } from '../../__tests__/helpers/idb.js'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { createClient, type TidesyncClient } from '../client.js'
import { openLocalDb } from '../db/database.js'
import { TidesyncClientError, TidesyncValidationError } from '../errors.js'
import { readSchema } from '../schema/model.js'
import type { Logger } from '../types.js'

// No server here: every client is offline (it never connects), so this is the local store alone.
const clients: TidesyncClient<typeof schema>[] = []
function offlineClient(dbName: string) {
  const client = createClient({
    url: 'http://127.0.0.1:9',
    schema,
    models: modelOptions,
    dbName,
    online: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  })
  clients.push(client)
  return client
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})

describe('local store (offline)', () => {
  it('applies writes at once and queues them in the outbox', async () => {
    const client = offlineClient(uniqueDbName())
    const todos = client.collection('todos')
    const created = await todos.create({ title: 'milk' })
    expect(created).toMatchObject({ title: 'milk', done: false, projectId: 'inbox', likes: 0, dueAt: null })
    expect(created.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
    await todos.update(created.uid, { done: true, title: 'milk' })
    await todos.increment(created.uid, 'likes', 2)
    expect(await todos.get(created.uid)).toMatchObject({ done: true, likes: 2 })
    await waitFor(() => client.status.pending === 3, 2000, 'pending = 3')
    expect(client.status.online).toBe(false)
    expect(await todos.delete(created.uid)).toBe(true)
    expect(await todos.get(created.uid)).toBeUndefined()
    expect(await todos.delete(created.uid)).toBe(false)
    await waitFor(() => client.status.pending === 4, 2000, 'pending = 4')
  })

  it('queues only the fields that changed', async () => {
    const dbName = uniqueDbName()
    const client = offlineClient(dbName)
    const todos = client.collection('todos')
    const todo = await todos.create({ title: 'a', projectId: 'p1' })
    await todos.update(todo.uid, { title: 'a', projectId: 'p2', done: false })
    await client.close()
    const db = await openLocalDb(dbName, readSchema(schema, modelOptions), {})
    const outbox = await db.outbox.orderBy('seq').toArray()
    db.dexie.close()
    expect(outbox.map((entry) => entry.change.op)).toEqual(['create', 'update'])
    // The create carries the given fields and the computed defaults, not the implicit nulls.
    expect(Object.keys((outbox[0]!.change as { data: object }).data).sort()).toEqual([
      'done',
      'likes',
      'projectId',
      'title',
      'uid',
    ])
    expect(outbox[1]!.change).toMatchObject({ op: 'update', patch: { projectId: 'p2' } })
    expect(Object.keys((outbox[1]!.change as { patch: object }).patch)).toEqual(['projectId'])
  })

  it('refuses unknown fields, wrong types and non-counters at the call', async () => {
    const client = offlineClient(uniqueDbName())
    const todos = client.collection('todos')
    const todo = await todos.create({ title: 'x' })
    const refused = async (write: Promise<unknown>, code: string) => {
      const error = await write.then(
        () => null,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TidesyncValidationError)
      expect((error as TidesyncValidationError).code).toBe(code)
    }
    await refused(todos.create({ title: 'x', nope: 1 } as never), 'CLIENT_UNKNOWN_FIELD')
    await refused(todos.create({ title: 42 } as never), 'CLIENT_INVALID_TYPE')
    await refused(todos.create({} as never), 'CLIENT_MISSING_FIELD')
    await refused(todos.update(todo.uid, { done: 'yes' } as never), 'CLIENT_INVALID_TYPE')
    await refused(todos.update(todo.uid, { dueAt: 'tomorrow' } as never), 'CLIENT_INVALID_TYPE')
    await refused(todos.update(todo.uid, { likes: 3 }), 'CLIENT_NOT_A_COUNTER')
    await refused(todos.update(todo.uid, JSON.parse('{"__proto__": {"x": 1}}')), 'CLIENT_UNKNOWN_FIELD')
    await refused(todos.update(todo.uid, { tags: [new Date()] } as never), 'CLIENT_INVALID_TYPE')
    await refused(todos.increment(todo.uid, 'likes', 1.5), 'CLIENT_INVALID_TYPE')
    await refused(todos.update(todo.uid, { ['constructor' as 'title']: 'x' }), 'CLIENT_UNKNOWN_FIELD')
    await expect(todos.update('nope', { title: 'y' })).rejects.toMatchObject({ code: 'CLIENT_NOT_FOUND' })
    await expect(todos.create({ uid: todo.uid, title: 'dup' })).rejects.toBeInstanceOf(TidesyncClientError)
    await waitFor(() => client.status.pending === 1, 2000, 'only the valid create is pending')
  })

  it('keeps writes and the outbox across a reload (close and reopen)', async () => {
    const dbName = uniqueDbName()
    const first = offlineClient(dbName)
    const todo = await first.collection('todos').create({ title: 'survive', tags: ['a'] })
    await first.collection('todos').update(todo.uid, { dueAt: new Date('2026-05-01T00:00:00Z') })
    const firstId = await first.clientId()
    await first.close()
    const second = offlineClient(dbName)
    expect(await second.clientId()).toBe(firstId)
    const again = await second.collection('todos').get(todo.uid)
    expect(again).toMatchObject({ title: 'survive', tags: ['a'] })
    expect(again?.dueAt).toBeInstanceOf(Date)
    await waitFor(() => second.status.pending === 2, 2000, 'pending after reload')
    await second.close()
    await expect(second.collection('todos').get(todo.uid)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })
    await expect(second.collection('todos').create({ title: 'late' })).rejects.toBeInstanceOf(
      TidesyncClientError,
    )
  })

  it('emits live queries on every change, filtered and ordered', async () => {
    const client = offlineClient(uniqueDbName())
    const todos = client.collection('todos')
    const seen: string[][] = []
    const subscription = todos
      .find$({ projectId: 'p1' }, { orderBy: '-title' })
      .subscribe((rows) => seen.push(rows.map((row) => row.title)))
    await todos.create({ title: 'a', projectId: 'p1' })
    await todos.create({ title: 'b', projectId: 'p2' })
    await todos.create({ title: 'c', projectId: 'p1' })
    await waitFor(() => seen.at(-1)?.join() === 'c,a', 2000, 'live result c,a')
    const one = await todos.create({ title: 'd' })
    const live = todos.get$(one.uid).pipe(filter((row) => row?.title === 'e'))
    const next = firstValueFrom(live)
    await todos.update(one.uid, { title: 'e' })
    expect((await next)?.title).toBe('e')
    subscription.unsubscribe()
  })

  it('logs bare messages to its logger; the default logger adds the [tidesync/client] prefix', async () => {
    const dbName = uniqueDbName()
    const first = offlineClient(dbName)
    await first.collection('todos').create({ title: 'kept' })
    await first.close()
    // Damaged metadata is repaired (and warned about) when the database opens.
    const damage = async () => {
      const raw = new Dexie(dbName)
      await raw.open()
      await raw.table('m_todos').clear()
      raw.close()
    }
    const repairing = 'todos: repairing local metadata (1 records, 0 stray rows); a full reconcile follows'
    const reopen = (logger?: Logger) => {
      const client = createClient({
        url: 'http://127.0.0.1:9',
        schema,
        models: modelOptions,
        dbName,
        online: false,
        logger,
      })
      clients.push(client)
      return client
    }

    await damage()
    const warned: unknown[][] = []
    const own = reopen({ debug() {}, info() {}, warn: (...args) => warned.push(args), error() {} })
    await own.ready
    await own.close()
    expect(warned).toEqual([[repairing]])

    await damage()
    const consoleWarn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const plain = reopen()
      await plain.ready
      await plain.close()
      expect(consoleWarn.mock.calls).toEqual([[`[tidesync/client] ${repairing}`]])
    } finally {
      consoleWarn.mockRestore()
    }
  })
})
