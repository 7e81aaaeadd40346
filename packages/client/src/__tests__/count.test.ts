import type { Subscription } from 'rxjs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { TidesyncValidationError } from '../core/errors.js'
import { settle, type TestClient, testClient } from './helpers/clients.js'
import { uniqueDbName, waitFor } from './helpers/idb.js'
import { startServer, type TestServer } from './helpers/server.js'

// collection.count(where) and count$(where): the number find(where) gives, once and live.

let server: TestServer
const clients: TestClient[] = []
const subscriptions: Subscription[] = []
const track = (client: TestClient) => {
  clients.push(client)
  return client
}

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.unsubscribe()
  await Promise.all(clients.splice(0).map((client) => client.close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`

/** Every value `count$` emits, in order. */
function record(client: TestClient) {
  const seen: number[] = []
  return {
    seen,
    subscribe(where?: Record<string, unknown>, options?: { sync?: boolean }) {
      subscriptions.push(
        client
          .collection('todos')
          .count$(where as never, options)
          .subscribe((n) => seen.push(n)),
      )
      return seen
    },
  }
}

describe('count', () => {
  it('equals the length of find for no where, an indexed where, a range and an unindexed where', async () => {
    const a = track(testClient(server))
    a.goOffline()
    const todos = a.collection('todos')
    const p = project()
    const due = new Date('2026-03-01T00:00:00Z')
    for (let i = 0; i < 12; i++) {
      await todos.create({
        title: `t${i}`,
        projectId: i % 3 === 0 ? p : `${p}-other`,
        done: i % 2 === 0,
        likes: i,
        dueAt: new Date(due.getTime() + i * 86_400_000),
      })
    }
    const first = (await todos.find({ projectId: p }))[0]!
    await todos.delete(first.uid)
    const wheres: Array<Record<string, unknown> | undefined> = [
      undefined,
      {},
      { projectId: p },
      { projectId: { in: [p, `${p}-other`] } },
      { done: true },
      { likes: { gte: 3, lt: 9 } },
      { dueAt: { gt: new Date(due.getTime() + 5 * 86_400_000) } },
      { projectId: `${p}-other`, done: false },
      { projectId: 'no such project' },
    ]
    for (const where of wheres) {
      const expected = (await todos.find(where as never)).length
      expect(await todos.count(where as never), JSON.stringify(where)).toBe(expected)
    }
    expect(await todos.count()).toBe(11)
    expect(await todos.count({ projectId: p })).toBe(3)
  })

  it('rejects a where the model cannot answer with a typed error, before anything is read', async () => {
    const a = track(testClient(server))
    a.goOffline()
    const todos = a.collection('todos')
    const error = await todos.count({ nope: 1 } as never).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(TidesyncValidationError)
    expect(error).toMatchObject({ code: 'CLIENT_UNKNOWN_FIELD' })
    expect(() => todos.count$({ nope: 1 } as never)).toThrow(TidesyncValidationError)
    expect(() => todos.count$({ likes: { between: 1 } } as never)).toThrow(TidesyncValidationError)
  })
})

describe('count$', () => {
  it('follows local creates and deletes, emitting only when the number changes', async () => {
    const a = track(testClient(server))
    a.goOffline()
    const todos = a.collection('todos')
    const p = project()
    const seen = record(a).subscribe({ projectId: p }, { sync: false })
    await waitFor(() => seen.length === 1, 2000, 'first count')
    expect(seen).toEqual([0])
    const one = await todos.create({ title: 'one', projectId: p })
    const two = await todos.create({ title: 'two', projectId: p })
    await waitFor(() => seen.at(-1) === 2, 2000, 'count 2')
    // Changes that leave the number as it was: another project's record, an update.
    await todos.create({ title: 'elsewhere', projectId: `${p}-x` })
    await todos.update(one.uid, { title: 'one!' })
    await todos.increment(two.uid, 'likes', 3)
    await todos.delete(one.uid)
    await waitFor(() => seen.at(-1) === 1, 2000, 'count 1')
    // Never the same number twice in a row, never more than there were.
    expect(seen[0]).toBe(0)
    expect(seen.every((n, i) => i === 0 || n !== seen[i - 1])).toBe(true)
    expect(Math.max(...seen)).toBe(2)
    expect(seen.at(-1)).toBe(await todos.count({ projectId: p }))
  })

  it('keeps the subset in sync: records another client creates and deletes arrive and are counted', async () => {
    const p = project()
    const writer = track(testClient(server))
    await settle(writer)
    for (let i = 0; i < 5; i++) await writer.collection('todos').create({ title: `w${i}`, projectId: p })
    await settle(writer)

    const reader = track(testClient(server))
    const seen = record(reader).subscribe({ projectId: p })
    await waitFor(() => seen.at(-1) === 5, 5000, 'the 5 records pulled')

    const more = await writer.collection('todos').create({ title: 'live', projectId: p })
    await waitFor(() => seen.at(-1) === 6, 5000, 'a live create counted')
    await writer.collection('todos').delete(more.uid)
    await waitFor(() => seen.at(-1) === 5, 5000, 'a live delete counted')
    expect(await reader.collection('todos').count({ projectId: p })).toBe(5)
  })

  it('counts what another connection to the same database writes (another tab)', async () => {
    const p = project()
    const dbName = uniqueDbName()
    const a = track(testClient(server, { dbName }))
    a.goOffline()
    const seen = record(a).subscribe({ projectId: p }, { sync: false })
    await waitFor(() => seen.length === 1, 2000, 'first count')
    const tab = track(testClient(server, { dbName }))
    tab.goOffline()
    await tab.collection('todos').create({ title: 'from the other tab', projectId: p })
    await waitFor(() => seen.at(-1) === 1, 5000, "the other tab's record counted")
  })

  it('stops reading after unsubscribe', async () => {
    const a = track(testClient(server))
    a.goOffline()
    const p = project()
    const seen: number[] = []
    const subscription = a
      .collection('todos')
      .count$({ projectId: p }, { sync: false })
      .subscribe((n) => seen.push(n))
    await waitFor(() => seen.length === 1, 2000, 'first count')
    subscription.unsubscribe()
    await a.collection('todos').create({ title: 'unseen', projectId: p })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(seen).toEqual([0])
  })
})
