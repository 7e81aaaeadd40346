import { io } from 'socket.io-client'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { TidesyncSocket } from '../core/sync/transport.js'
import { online, type TestClient, testClient } from './helpers/clients.js'
import { uniqueDbName, waitFor } from './helpers/idb.js'
import { startServer, type TestServer } from './helpers/server.js'

/**
 * Connection races the model test found (seed 11).
 *
 * A connection joins the server's namespace once. socket.io-client's `connect()` on a socket
 * whose connection is open but whose namespace join is still unanswered sends a second join, and
 * the server treats that as a protocol violation and closes the whole connection: the client
 * reported `online`, then the connection dropped and `syncNow()` failed with `CLIENT_OFFLINE`.
 * The first tests call the client at exactly that moment: from the server, while it handles the
 * first join and before it answers it.
 *
 * And `syncNow()` resolves only when the sync finished: a connection lost while it runs rejects it
 * (it used to resolve with nothing synced when no request was refused on the way).
 */

let server: TestServer
const clients: TestClient[] = []
const sockets: TidesyncSocket[] = []
/** Per auth token: how many namespace joins reached the server, and what to do during the first. */
const joins = new Map<string, { count: number; duringFirst: () => Promise<void> | void }>()
/** Auth tokens whose connection the server drops on their next `subscribe` request (left unanswered). */
const dropOnSubscribe = new Set<string>()

beforeAll(async () => {
  server = await startServer()
  // Sees every namespace join (socket.io middleware runs once per join) before it is answered.
  server.io.use(async (socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token
    const watch = typeof token === 'string' ? joins.get(token) : undefined
    if (watch) {
      watch.count += 1
      if (watch.count === 1) await watch.duringFirst()
    }
    next()
  })
  server.io.on('connection', (socket) => {
    socket.use(([event], next) => {
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token
      if (event !== 'subscribe' || typeof token !== 'string' || !dropOnSubscribe.delete(token)) return next()
      socket.conn.close() // the connection closes as on a network failure: the client reconnects by itself
    })
  })
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()))
  for (const socket of sockets.splice(0)) socket.disconnect()
})
afterAll(async () => {
  await server?.close()
})

/** Records every `online` value the client reports from now on. */
function onlineHistory(client: TestClient): boolean[] {
  const seen: boolean[] = []
  client.status$.subscribe((status) => seen.push(status.online))
  return seen
}

/** Whether `online` went back to false after it was true once (the connection dropped). */
const dropped = (seen: boolean[]) => seen.slice(seen.indexOf(true)).includes(false)

describe('connecting while the namespace join is unanswered', () => {
  it('goOnline() again during the join keeps the connection (and syncNow works)', async () => {
    const token = `twice-${uniqueDbName()}`
    const client = testClient(server, { online: false, auth: { token } })
    clients.push(client)
    await client.ready
    const seen = onlineHistory(client)
    // The app (or a retry button) asks to go online again while the first join is on its way.
    joins.set(token, { count: 0, duringFirst: () => client.goOnline() })
    client.goOnline()
    await online(client)
    // Requests sent after the second goOnline(): answered only on a connection the server kept.
    await client.syncNow()
    expect(joins.get(token)!.count).toBe(1)
    expect(dropped(seen)).toBe(false)
    expect(client.status.online).toBe(true)
    expect(client.status.error).toBeNull()
  })

  it('a client started on an app socket that is joining does not join again', async () => {
    const token = `app-${uniqueDbName()}`
    const socket = io(server.url, { autoConnect: false, transports: ['websocket'], auth: { token } })
    sockets.push(socket as TidesyncSocket)
    let client: TestClient | undefined
    // The app makes the client while its socket's first join is unanswered.
    joins.set(token, {
      count: 0,
      duringFirst: async () => {
        client = testClient(server, { socket: socket as TidesyncSocket, url: undefined })
        clients.push(client)
        await client.ready
      },
    })
    socket.connect()
    await waitFor(() => client !== undefined, 5000, 'client made during the join')
    const seen = onlineHistory(client!)
    await online(client!)
    await client!.syncNow()
    expect(joins.get(token)!.count).toBe(1)
    expect(dropped(seen)).toBe(false)
    expect(socket.connected).toBe(true)
  })
})

describe('syncNow() and a connection that drops during the sync', () => {
  it('rejects with CLIENT_OFFLINE instead of resolving without having synced', async () => {
    const token = `drop-${uniqueDbName()}`
    const client = testClient(server, { online: false, auth: { token } })
    clients.push(client)
    const watching = client.collection('todos').find$({ projectId: token }).subscribe()
    try {
      await client.ready
      dropOnSubscribe.add(token)
      client.goOnline()
      await online(client)
      // Joins the cycle the connect started; that cycle's subscribe request loses its connection.
      await expect(client.syncNow()).rejects.toMatchObject({ code: 'CLIENT_OFFLINE' })
      expect(client.status.lastSyncedAt).toBeNull()
      // The client reconnects by itself, and then the same call syncs.
      await online(client)
      await client.syncNow()
      expect(client.status.lastSyncedAt).toBeInstanceOf(Date)
      expect(await client.activeSubsets()).toHaveLength(1)
    } finally {
      watching.unsubscribe()
    }
  })
})
