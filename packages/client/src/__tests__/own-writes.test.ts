import { Dexie } from 'dexie'
import { eq } from 'drizzle-orm'
import type { Socket } from 'socket.io'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '../core/client.js'
import type { OutboxRow } from '../core/db/rows.js'
import { idle, online, settle, silentLogger, testClient } from './helpers/clients.js'
import { uniqueDbName, waitFor } from './helpers/idb.js'
import { todos } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

/**
 * What a client's own write costs it on the way out and back: one push request per write, no
 * second copy from a full reconcile that crossed its push, and no second local write when the
 * live push echoes it.
 */

let server: TestServer
const clients: Array<{ close(): Promise<void> }> = []
const track = <C extends { close(): Promise<void> }>(client: C): C => {
  clients.push(client)
  return client
}

/** Per project id: the `sync:full` answers the server sends for it are handed to this instead. */
const heldFullAnswers = new Map<string, (deliver: () => void) => void>()

beforeAll(async () => {
  server = await startServer()
  // Observes (and can hold back) the server's answer to a `sync:full`; the real handler runs.
  server.io.on('connection', (socket: Socket) => {
    socket.use((packet, next) => {
      const [event, payload] = packet
      const projectId = (payload as { where?: { projectId?: string } } | undefined)?.where?.projectId
      const hold = event === 'sync:full' && projectId ? heldFullAnswers.get(projectId) : undefined
      const ack = packet.at(-1)
      if (hold && typeof ack === 'function') {
        heldFullAnswers.delete(projectId!)
        packet[packet.length - 1] = (reply: unknown) => hold(() => ack(reply))
      }
      next()
    })
  })
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`

/** The `sync:push` requests the server received from `clientId` since request number `since`. */
const pushRequests = (clientId: string, since: number) =>
  server.requests.slice(since).filter((r) => r.event === 'sync:push' && r.payload.clientId === clientId)

/** Counts the commits that touch a table of one local database (any tab, any Dexie instance). */
function commitsTo(dbName: string, table: string): { readonly count: number; stop(): void } {
  let count = 0
  const part = `idb://${dbName}/${table}/`
  const listener = (parts: Record<string, unknown>) => {
    if (part in parts) count += 1
  }
  Dexie.on('storagemutated', listener)
  return {
    get count() {
      return count
    },
    stop: () => Dexie.on.storagemutated.unsubscribe(listener),
  }
}

describe("a client's own writes", () => {
  it('pushes each write once: one push run, one cross-tab lock, one sync:push', async () => {
    const p = project()
    const dbName = uniqueDbName()
    const a = track(testClient(server, { dbName, lock: 'lease' }))
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await settle(a)
    const todo = await a.collection('todos').create({ title: 'counted', projectId: p })
    await idle(a)
    const clientId = await a.clientId()
    const lease = commitsTo(dbName, '_locks')
    const since = server.requests.length
    for (let i = 1; i <= 3; i++) {
      await a.collection('todos').update(todo.uid, { title: `counted ${i}` })
      // The push is under way before the write's promise resolved.
      expect(a.status.syncing).toBe(true)
      await idle(a)
    }
    lease.stop()
    expect(pushRequests(clientId, since).map((r) => (r.payload.changes as unknown[]).length)).toEqual([
      1, 1, 1,
    ])
    // Each push run takes the lease once: one commit to take it, one to give it back.
    expect(lease.count).toBe(6)
    sub.unsubscribe()
  })

  it("the writer's live queries emit once per own update; the echo is not written again", async () => {
    const p = project()
    const a = track(testClient(server))
    const b = track(testClient(server))
    const emitted: string[][] = []
    const subA = a
      .collection('todos')
      .find$({ projectId: p }, { orderBy: 'title' })
      .subscribe((rows) => emitted.push(rows.map((row) => row.title)))
    let seenByB: string[] = []
    const subB = b
      .collection('todos')
      .find$({ projectId: p }, { orderBy: 'title' })
      .subscribe((rows) => {
        seenByB = rows.map((row) => row.title)
      })
    await settle(a)
    await settle(b)
    const todo = await a.collection('todos').create({ title: 'a0', projectId: p })
    await waitFor(() => seenByB.join() === 'a0', 5000, 'b sees the create')
    // Settled: the create's answer and its echo are behind us (b's marker comes after them).
    await b.collection('todos').create({ title: 'm0', projectId: p })
    await waitFor(() => emitted.at(-1)?.join() === 'a0,m0', 5000, 'a sees the first marker')
    const before = emitted.length
    for (let i = 1; i <= 3; i++) {
      await a.collection('todos').update(todo.uid, { title: `a${i}` })
      await waitFor(() => seenByB.includes(`a${i}`), 5000, `b sees update ${i}`)
    }
    // b's marker reaches a after the echoes of a's updates (one subscription, in order).
    await b.collection('todos').create({ title: 'm1', projectId: p })
    await waitFor(() => emitted.at(-1)?.join() === 'a3,m0,m1', 5000, 'a sees the second marker')
    expect(emitted.slice(before)).toEqual([
      ['a1', 'm0'],
      ['a2', 'm0'],
      ['a3', 'm0'],
      ['a3', 'm0', 'm1'],
    ])
    const [row] = await server.db.select().from(todos).where(eq(todos.uid, todo.uid))
    expect(row?.title).toBe('a3')
    subA.unsubscribe()
    subB.unsubscribe()
  })

  it('pushes outbox rows stored by an earlier version (the change carrying the wire name)', async () => {
    // The app calls the model `tasks`; the server calls it `todos`.
    const p = project()
    const dbName = uniqueDbName()
    const open = (online: boolean) =>
      createClient({
        url: server.url,
        schema: { tasks: todos },
        models: { tasks: { name: 'todos', counters: ['likes'], indexes: ['projectId'] } },
        dbName,
        clientId: `renamed-${dbName}`,
        online,
        logger: silentLogger,
        retry: { minDelayMs: 20, maxDelayMs: 200 },
        socketOptions: { transports: ['websocket'] },
      })
    const offline = open(false)
    const task = await offline.collection('tasks').create({ title: 'queued before', projectId: p })
    await offline.collection('tasks').increment(task.uid, 'likes', 2)
    await offline.close()
    // Outbox rows name the model by its schema key only; an earlier version also stored the
    // wire name in the change. Turn the stored rows into that shape.
    const raw = new Dexie(dbName)
    await raw.open()
    const rows = (await raw.table('_outbox').toArray()) as OutboxRow[]
    expect(rows.map((row) => [row.model, 'model' in row.change])).toEqual([
      ['tasks', false],
      ['tasks', false],
    ])
    await raw
      .table('_outbox')
      .bulkPut(rows.map((row) => ({ ...row, change: { ...row.change, model: 'todos' } })))
    raw.close()

    const since = server.requests.length
    const again = track(open(true))
    const sub = again.collection('tasks').find$({ projectId: p }).subscribe()
    await waitFor(() => again.status.online, 5000, 'online')
    await again.collection('tasks').update(task.uid, { done: true })
    await waitFor(() => again.status.pending === 0 && !again.status.syncing, 5000, 'pushed')
    const sent = pushRequests(`renamed-${dbName}`, since).flatMap(
      (r) => r.payload.changes as Array<{ model: string; op: string }>,
    )
    expect(sent.map((change) => [change.op, change.model])).toEqual([
      ['create', 'todos'],
      ['increment', 'todos'],
      ['update', 'todos'],
    ])
    const [row] = await server.db.select().from(todos).where(eq(todos.uid, task.uid))
    expect(row).toMatchObject({ title: 'queued before', likes: 2, done: true })
    expect(await again.collection('tasks').get(task.uid)).toMatchObject({ likes: 2, done: true })
    expect(again.status.error).toBeNull()
    sub.unsubscribe()
  })

  it('a full reconcile that crossed a push does not push the record again', async () => {
    // A create is in flight while the subset's first sync (a full reconcile: the record is local)
    // asks the server, which does not have it yet and answers "add it to the database". The push's
    // answer arrives first: the record is confirmed before the reconcile's answer is applied.
    const p = project()
    const clientId = `reconcile-${uniqueDbName()}`
    const a = track(testClient(server, { clientId, requestTimeoutMs: 1000, pushTimeoutPerChangeMs: 0 }))
    await online(a)
    await idle(a)
    const hold = server.holdPushes(clientId)
    const todo = await a.collection('todos').create({ title: 'once', projectId: p })
    await waitFor(() => hold.held === 1, 5000, 'push received')
    let deliverFull: (() => void) | undefined
    heldFullAnswers.set(p, (deliver) => {
      deliverFull = deliver
    })
    // The cycle waits for the open push until its timeout, then reconciles the new subset.
    const sub = a.collection('todos').find$({ projectId: p }).subscribe()
    await waitFor(() => deliverFull !== undefined, 5000, 'sync:full answered by the server')
    hold.release()
    await waitFor(() => a.status.pending === 0, 5000, 'push answered and applied')
    deliverFull!()
    await idle(a)
    await a.syncNow()
    expect(server.pushedChangeIds.get(clientId)).toHaveLength(1)
    expect(await a.collection('todos').get(todo.uid)).toMatchObject({ title: 'once' })
    sub.unsubscribe()
  })
})
