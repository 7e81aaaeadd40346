import type { ChangesPush } from '@tidesync/protocol'
import { eq } from 'drizzle-orm'
import { io } from 'socket.io-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { SubsetState } from '../core/sync/subsets.js'
import type { TidesyncSocket } from '../core/sync/transport.js'
import { idle, settle, type TestClient, testClient } from './helpers/clients.js'
import { sleep, uniqueDbName, waitFor } from './helpers/idb.js'
import { todos } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

/**
 * A client that keeps writing still syncs its subsets and gets live changes (its sync cycle does
 * not wait for the outbox to run dry), and going online again on a live connection does not pile
 * up subscriptions.
 */

let server: TestServer
const clients: TestClient[] = []
const sockets: TidesyncSocket[] = []
const track = (client: TestClient) => {
  clients.push(client)
  return client
}

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  for (const socket of sockets.splice(0)) socket.disconnect()
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`
const serverTodos = (projectId: string) =>
  server.db.select().from(todos).where(eq(todos.projectId, projectId))

describe('a client that keeps writing', () => {
  it('syncs its subset and gets live changes while its writes keep coming', async () => {
    const p = project()
    // Another client has a record of the subset on the server already.
    const other = track(testClient(server))
    const otherWatch = other.collection('todos').find$({ projectId: p }).subscribe()
    await settle(other)
    await other.collection('todos').create({ title: 'seeded', projectId: p })
    await idle(other)

    const writer = track(testClient(server, { online: false }))
    const clientId = await writer.clientId()
    // Every push takes a while, so writes always come in while one is on its way: the outbox
    // never runs dry until the writes stop.
    server.delayPushes(clientId, 20)
    const collection = writer.collection('todos')
    let state: SubsetState | undefined
    const watch = collection.syncState$({ projectId: p }).subscribe((next) => {
      state = next
    })
    const maxWrites = 400
    let writes = 0
    let stop = false
    const writing = (async () => {
      while (!stop && writes < maxWrites) {
        await collection.create({ title: `w${writes}`, projectId: p })
        writes += 1
        await sleep(2)
      }
    })()
    try {
      await waitFor(() => writes >= 5, 5000, 'first writes')
      writer.goOnline()

      // The subset syncs (the seeded record arrives) while the writes go on.
      await waitFor(() => state?.synced === true || writes >= maxWrites, 30_000, 'subset synced')
      const writesWhenSynced = writes
      expect(state?.synced, 'the subset synced only once the writes stopped').toBe(true)
      expect(writesWhenSynced).toBeLessThan(maxWrites)
      expect((await collection.find({ projectId: p, title: 'seeded' })).length).toBe(1)

      // Live changes from another client arrive while the writes go on.
      const liveTodo = await other.collection('todos').create({ title: 'live', projectId: p })
      await waitFor(
        async () => (await collection.get(liveTodo.uid)) !== undefined || writes >= maxWrites,
        30_000,
        'live change',
      )
      expect(
        await collection.get(liveTodo.uid),
        'the live change came only once the writes stopped',
      ).toBeDefined()
      expect(writes).toBeLessThan(maxWrites)
    } finally {
      stop = true
      await writing
      watch.unsubscribe()
      otherWatch.unsubscribe()
      server.delayPushes(clientId, 0)
    }
    // And everything converges once the writes stopped.
    await idle(writer, 30_000)
    expect(await serverTodos(p)).toHaveLength(writes + 2)
    expect(await collection.find({ projectId: p })).toHaveLength(writes + 2)
  })
})

describe('goOnline() on a connected client', () => {
  it('keeps one subscription per subset: a change from another client arrives once', async () => {
    const p = project()
    const token = `again-${uniqueDbName()}`
    const socket = io(server.url, {
      autoConnect: false,
      transports: ['websocket'],
      auth: { token },
    }) as TidesyncSocket
    sockets.push(socket)
    // Every live push this socket receives, as the server sent it.
    const received: ChangesPush[] = []
    ;(socket as unknown as { on(event: string, h: (push: ChangesPush) => void): void }).on(
      'changes',
      (push) => received.push(push),
    )
    const reader = track(testClient(server, { socket, url: undefined }))
    const watch = reader.collection('todos').find$({ projectId: p }).subscribe()
    try {
      socket.connect()
      await settle(reader)
      for (let i = 0; i < 5; i += 1) reader.goOnline()
      await reader.syncNow()
      await idle(reader)

      const subscribes = server.requests.filter(
        (r) => r.event === 'subscribe' && (r.payload.where as { projectId?: string }).projectId === p,
      )
      expect(subscribes).toHaveLength(1)

      const writer = track(testClient(server))
      const first = await writer.collection('todos').create({ title: 'first', projectId: p })
      const second = await writer.collection('todos').create({ title: 'second', projectId: p })
      await idle(writer)
      const holds = (uid: string) => received.filter((push) => push.upserts.some((u) => u.record.uid === uid))
      // Each change goes out to every subscription at once: once the second arrived, any copy of
      // the first has arrived too.
      await waitFor(() => holds(second.uid).length > 0, 10_000, 'second change live')
      expect(holds(first.uid)).toHaveLength(1)
      expect(await reader.collection('todos').get(first.uid)).toBeDefined()
    } finally {
      watch.unsubscribe()
    }
  })
})
