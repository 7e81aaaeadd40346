import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io as connect } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { TidesyncConfigError } from '../errors.js'
import { noopLogger } from '../logger.js'
import type { Change, PushResult, Reply, WireError } from '../protocol.js'
import { type InstallOptions, installTidesync, type TidesyncServer } from '../sync-server.js'
import type { Logger, TidesyncDb } from '../types.js'
import type { TestCtx } from './contract/env.js'
import { clientClock } from './fixtures/clock.js'
import { todos } from './fixtures/schema.js'
import { type SocketFixture, startSocketFixture, type TestClient, TOKENS } from './fixtures/socket-server.js'

// How these tests see what runs: PGlite runs one transaction at a time and every other query
// waits for it, so a test that holds a transaction open (`holdDatabase`) stops every request
// at its first query, without touching the server. What the server then started, queued and
// answered is exact, whatever the machine's speed; `fx.tidesync.requests` says how many of the
// socket's requests hold a slot and how many wait.

type Loose = {
  emit(event: string, payload: unknown, ack?: (reply: Reply<unknown>) => void): void
  timeout(ms: number): { emitWithAck(event: string, payload: unknown): Promise<Reply<unknown>> }
}

function request<T = unknown>(socket: TestClient, event: string, payload: unknown): Promise<Reply<T>> {
  return (socket as unknown as Loose).timeout(10_000).emitWithAck(event, payload) as Promise<Reply<T>>
}

/** Sends a request; `onReply` runs when (if ever) it is answered. */
function emit(socket: TestClient, event: string, payload: unknown, onReply: (reply: Reply<unknown>) => void) {
  ;(socket as unknown as Loose).emit(event, payload, onReply)
}

function disconnected(socket: TestClient): Promise<string> {
  return new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason)))
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** Holds a PGlite transaction open: every other query waits until `release`. */
async function holdDatabase(db: TidesyncDb): Promise<{ release(): Promise<void> }> {
  let open!: () => void
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  let began!: () => void
  const inside = new Promise<void>((resolve) => {
    began = resolve
  })
  const done = db.transaction(async () => {
    began()
    await gate
  })
  await inside
  return {
    async release() {
      open()
      await done
    },
  }
}

const findMany = { model: 'todos', method: 'findMany', args: {} }
/** Invalid at the boundary: answered without the database (and one violation). */
const ghost = { model: 'ghosts', method: 'findMany', args: {} }
const create = (title: string, ownerId = 'alice') => ({
  model: 'todos',
  method: 'create',
  args: { data: { ownerId, title } },
})

function push(clientId: string, titles: string[]): { clientId: string; changes: Change[] } {
  return {
    clientId,
    changes: titles.map((title) => ({
      id: uuidv7(),
      model: 'todos',
      uid: uuidv7(),
      op: 'create',
      data: { ownerId: 'alice', title },
      clock: clientClock(Date.now(), 'tab'),
    })),
  }
}

/** The revisions a push's changes got, in order (every change must have been applied). */
function revs(reply: Reply<unknown>): number[] {
  const outcomes = (reply as Reply<PushResult>).result!.outcomes
  return outcomes.map((o) => {
    if (o.status !== 'applied') throw new Error(`expected applied, got ${JSON.stringify(o)}`)
    return o.meta.rev
  })
}

async function titlesOf(fx: SocketFixture, token: string): Promise<string[]> {
  const reader = await fx.client(token)
  const list = await request<Array<{ record: { title: string } }>>(reader, 'service', findMany)
  reader.disconnect()
  return list.result!.map((r) => r.record.title).sort()
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

// One database for the whole file (PGlite takes seconds to start): the main fixture, and
// other configurations installed beside it on the same database and IPC.
let fx: SocketFixture

beforeAll(async () => {
  fx = await startSocketFixture({
    maxConcurrentRequestsPerSocket: 4,
    maxQueuedRequestsPerSocket: 16,
    // These tests send a few invalid requests and many refused ones on purpose; the
    // disconnect is tested below with the default policy.
    violations: { maxViolations: 1000 },
    // One transaction per change, so two pushes running at once would interleave.
    maxChangesPerTransaction: 1,
  })
})
afterAll(async () => {
  await fx?.close()
})
beforeEach(async () => {
  await fx.database.reset()
})

interface Installed {
  tidesync: TidesyncServer<TestCtx>
  client(token?: string): Promise<TestClient>
  close(): Promise<void>
}

/** Another tidesync on the fixture's database and IPC, on its own socket.io server. */
async function install(options: Partial<InstallOptions<TestCtx>>): Promise<Installed> {
  const http = createServer()
  const io = new Server(http)
  const tidesync = await installTidesync<TestCtx>(io, {
    db: fx.database.db,
    ipc: fx.ipc,
    logger: noopLogger,
    models: { todos: { table: todos, scope: (ctx) => (ctx.userId ? { ownerId: ctx.userId } : undefined) } },
    authenticate: (handshake) => TOKENS[String((handshake.auth as { token?: unknown }).token)] ?? null,
    ...options,
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  const sockets: TestClient[] = []
  return {
    tidesync,
    async client(token = 'alice') {
      const socket: TestClient = connect(url, {
        auth: { token },
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
      })
      sockets.push(socket)
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve())
        socket.once('connect_error', reject)
      })
      return socket
    },
    async close() {
      for (const socket of sockets) socket.disconnect()
      await tidesync.close()
      await new Promise<void>((resolve) => io.close(() => resolve()))
    },
  }
}

describe('per-socket request limits (4 at once, 16 queued)', () => {
  it('runs at most 4 requests of a socket at once, queues 16, refuses the rest at once; another socket is served meanwhile', async () => {
    const flooder = await fx.client('alice')
    const normal = await fx.client('bob')
    const answers: Array<{ index: number; reply: Reply<unknown> }> = []
    let normalReply: Promise<Reply<unknown>>
    let flooderWhenServed: { running: number; queued: number } | undefined
    const hold = await holdDatabase(fx.database.db)
    try {
      for (let i = 0; i < 200; i++)
        emit(flooder, 'service', findMany, (reply) => answers.push({ index: i, reply }))
      // Nothing can be answered from the database now: what comes back is refused at once,
      // and it is exactly the requests past 4 running + 16 queued.
      await until(() => answers.length === 180)
      expect(answers.map((a) => a.index)).toEqual(range(20, 200))
      for (const { reply } of answers)
        expect(reply.error).toEqual({
          code: 'TOO_MANY_REQUESTS',
          message: expect.stringMatching(/more than 20 requests in flight on this socket/),
          retryable: true,
        })
      expect(fx.tidesync.requests).toEqual({ running: 4, queued: 16 })
      expect(flooder.connected).toBe(true)
      // Another socket has slots of its own: its request starts at once. When the server
      // answers it (seen on the server side: in this process the server's work can hold the
      // client's reads back, so the order in which the client reads two sockets says nothing),
      // the flooder still has requests waiting.
      fx.io
        .of('/')
        .sockets.get(normal.id!)!
        .conn.once('packetCreate', () => {
          flooderWhenServed = { ...fx.tidesync.requests }
        })
      normalReply = request(normal, 'service', findMany)
      await until(() => fx.tidesync.requests.running === 5)
      expect(fx.tidesync.requests).toEqual({ running: 5, queued: 16 })
    } finally {
      await hold.release()
    }
    expect((await normalReply!).result).toEqual([])
    // Bob waited for the flooder's requests running when he came, not for its whole queue.
    expect(flooderWhenServed!.queued).toBeGreaterThan(0)
    // The flooder's 20 accepted requests are all answered, in the end, and nothing is left.
    await until(() => answers.length === 200)
    expect(
      answers
        .slice(180)
        .map((a) => a.index)
        .sort((a, b) => a - b),
    ).toEqual(range(0, 20))
    for (const { reply } of answers.slice(180)) expect(reply.result).toEqual([])
    expect(fx.tidesync.requests).toEqual({ running: 0, queued: 0 })
    expect(flooder.connected).toBe(true)
  })

  it('starts a request past the 4 running ones only after one of them is answered', async () => {
    const socket = await fx.client('alice')
    const order: string[] = []
    const hold = await holdDatabase(fx.database.db)
    try {
      for (let i = 0; i < 3; i++) emit(socket, 'service', findMany, () => order.push(`slow ${i}`))
      // A 4th request still gets a slot: one that needs no database is answered at once.
      expect((await request(socket, 'service', ghost)).error?.code).toBe('UNKNOWN_MODEL')
      emit(socket, 'service', findMany, () => order.push('slow 3'))
      // A 5th waits, although it needs no database either.
      emit(socket, 'service', ghost, () => order.push('fast'))
      await until(() => fx.tidesync.requests.queued === 1)
      expect(fx.tidesync.requests).toEqual({ running: 4, queued: 1 })
      expect(order).toEqual([])
    } finally {
      await hold.release()
    }
    await until(() => order.length === 5)
    expect(order[0]).toMatch(/^slow/)
    expect(order.slice().sort()).toEqual(['fast', 'slow 0', 'slow 1', 'slow 2', 'slow 3'])
  })

  it('runs the pushes of one socket one at a time, in order; a resent push waits and answers duplicate', async () => {
    const socket = await fx.client('alice')
    const first = push('phone', ['a1', 'a2', 'a3'])
    const second = push('phone', ['b1', 'b2', 'b3'])
    let replies: Promise<Reply<unknown>[]>
    const hold = await holdDatabase(fx.database.db)
    try {
      replies = Promise.all([
        request(socket, 'sync:push', first),
        request(socket, 'sync:push', second),
        // The first again, as a client whose request timed out would send it.
        request(socket, 'sync:push', first),
      ])
      // All three hold a slot; the second and third wait for the one before.
      await until(() => fx.tidesync.requests.running === 3)
    } finally {
      await hold.release()
    }
    const [a, b, again] = await replies!
    // Each change is one transaction: pushes running side by side would interleave revisions.
    const revsA = revs(a!)
    const revsB = revs(b!)
    expect(revsA).toEqual([...revsA].sort((x, y) => x - y))
    expect(Math.max(...revsA)).toBeLessThan(Math.min(...revsB))
    expect((again as Reply<PushResult>).result!.outcomes.map((o) => o.status)).toEqual([
      'duplicate',
      'duplicate',
      'duplicate',
    ])
  })

  it('runs the pushes of one clientId one at a time across sockets (tabs sharing a local database)', async () => {
    const tab1 = await fx.client('alice')
    const tab2 = await fx.client('alice')
    let replies: Promise<Reply<unknown>[]>
    const hold = await holdDatabase(fx.database.db)
    try {
      replies = Promise.all([
        request(tab1, 'sync:push', push('shared', ['a1', 'a2', 'a3'])),
        request(tab2, 'sync:push', push('shared', ['b1', 'b2', 'b3'])),
      ])
      await until(() => fx.tidesync.requests.running === 2)
    } finally {
      await hold.release()
    }
    const [a, b] = await replies!
    const [early, late] = [revs(a!), revs(b!)].sort((x, y) => x[0]! - y[0]!)
    expect(Math.max(...early!)).toBeLessThan(Math.min(...late!))
  })

  it('drops the queued requests of a socket that disconnects, and a push waiting for an earlier one', async () => {
    const socket = await fx.client('alice')
    const hold = await holdDatabase(fx.database.db)
    try {
      const ignore = () => {}
      emit(socket, 'sync:push', push('gone', ['push 1']), ignore) // runs
      emit(socket, 'sync:push', push('gone', ['push 2']), ignore) // holds a slot, waits for push 1
      emit(socket, 'service', create('service 1'), ignore) // runs
      emit(socket, 'service', create('service 2'), ignore) // runs
      for (const title of ['queued 1', 'queued 2', 'queued 3']) emit(socket, 'service', create(title), ignore)
      await until(() => fx.tidesync.requests.queued === 3)
      expect(fx.tidesync.requests).toEqual({ running: 4, queued: 3 })
      socket.disconnect()
      await until(() => fx.tidesync.requests.queued === 0)
    } finally {
      await hold.release()
    }
    await until(() => fx.tidesync.requests.running === 0)
    expect(await titlesOf(fx, 'alice')).toEqual(['push 1', 'service 1', 'service 2'])
  })
})

describe('a socket that keeps flooding (2 at once, 4 queued, default violation policy)', () => {
  let server: Installed
  const warnings: string[] = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message) => warnings.push(message),
    error: (message) => warnings.push(`error: ${message}`),
  }

  beforeAll(async () => {
    server = await install({ maxConcurrentRequestsPerSocket: 2, maxQueuedRequestsPerSocket: 4, logger })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('is disconnected at the 20th refusal; its queued requests never run; others keep working', async () => {
    const flooder = await server.client('alice')
    const finals: WireError[] = []
    flooder.on('tidesync:error', (error) => finals.push(error))
    const closed = disconnected(flooder)
    const answers: Reply<unknown>[] = []
    const hold = await holdDatabase(fx.database.db)
    try {
      for (let i = 0; i < 200; i++) emit(flooder, 'service', create(`flood ${i}`), (r) => answers.push(r))
      expect(await closed).toBe('io server disconnect')
      // 2 running, 4 queued, then refusals: the 20th is not answered, the socket is closed.
      expect(answers.map((a) => a.error?.code)).toEqual(Array(19).fill('TOO_MANY_REQUESTS'))
      expect(finals).toEqual([
        {
          code: 'TOO_MANY_VIOLATIONS',
          message: expect.stringMatching(/20 invalid requests within 10000 ms \(the last: TOO_MANY_REQUESTS/),
        },
      ])
      expect(warnings.some((w) => /^disconnecting socket .*TOO_MANY_REQUESTS/.test(w))).toBe(true)
      expect(server.tidesync.requests).toEqual({ running: 2, queued: 0 })
    } finally {
      await hold.release()
    }
    await until(() => server.tidesync.requests.running === 0)
    // The two that were running when it was cut finished; the four queued never ran.
    expect(await titlesOf(fx, 'alice')).toEqual(['flood 0', 'flood 1'])
    const bob = await server.client('bob')
    expect((await request(bob, 'service', create('still here', 'bob'))).result).toMatchObject({
      record: { title: 'still here' },
    })
  })

  it('never refuses a client that waits for its answers', async () => {
    const client = await server.client('alice')
    for (let i = 0; i < 30; i++) {
      const replies = await Promise.all(range(0, 6).map(() => request(client, 'service', findMany)))
      for (const reply of replies) expect(reply.error).toBeUndefined()
    }
    expect(client.connected).toBe(true)
  })
})

describe('request limit options', () => {
  const bad: Array<[string, unknown, RegExp]> = [
    [
      'maxConcurrentRequestsPerSocket',
      0,
      /maxConcurrentRequestsPerSocket must be a whole number >= 1, got 0/,
    ],
    ['maxConcurrentRequestsPerSocket', -1, /got -1/],
    ['maxConcurrentRequestsPerSocket', 1.5, /got 1.5/],
    ['maxConcurrentRequestsPerSocket', Number.NaN, /got NaN/],
    ['maxConcurrentRequestsPerSocket', Number.POSITIVE_INFINITY, /got Infinity/],
    ['maxConcurrentRequestsPerSocket', '8', /got "8"/],
    ['maxQueuedRequestsPerSocket', -1, /maxQueuedRequestsPerSocket must be a whole number >= 0, got -1/],
    ['maxQueuedRequestsPerSocket', 2.5, /got 2.5/],
    ['maxQueuedRequestsPerSocket', Number.NaN, /got NaN/],
    ['maxQueuedRequestsPerSocket', Number.POSITIVE_INFINITY, /got Infinity/],
    ['maxQueuedRequestsPerSocket', '64', /got "64"/],
    ['maxQueuedRequestsPerSocket', 2 ** 53, /got 9007199254740992/],
  ]

  it('refuses a bad value at install with TidesyncConfigError, before anything starts', async () => {
    for (const [option, value, message] of bad) {
      // No http server: nothing to close.
      const io = new Server()
      const installing = installTidesync(io, {
        db: fx.database.db,
        ipc: fx.ipc,
        logger: noopLogger,
        models: { todos: { table: todos } },
        [option]: value,
      })
      await expect(installing, `${option}: ${String(value)}`).rejects.toBeInstanceOf(TidesyncConfigError)
      await expect(installing).rejects.toThrow(message)
      // Nothing was installed on the namespace.
      expect(io.of('/').listeners('connection')).toHaveLength(0)
    }
  })

  it('with no queue, refuses at once what is past the running requests', async () => {
    const server = await install({ maxConcurrentRequestsPerSocket: 1, maxQueuedRequestsPerSocket: 0 })
    try {
      const socket = await server.client()
      const codes: Array<string | undefined> = []
      const hold = await holdDatabase(fx.database.db)
      try {
        for (let i = 0; i < 3; i++) emit(socket, 'service', findMany, (r) => codes.push(r.error?.code))
        await until(() => codes.length === 2)
        expect(codes).toEqual(['TOO_MANY_REQUESTS', 'TOO_MANY_REQUESTS'])
        expect(server.tidesync.requests).toEqual({ running: 1, queued: 0 })
      } finally {
        await hold.release()
      }
      await until(() => codes.length === 3)
      expect(codes[2]).toBeUndefined()
    } finally {
      await server.close()
    }
  })

  it('defaults to 8 at once and 64 queued', async () => {
    const server = await install({ violations: false })
    try {
      const socket = await server.client()
      const codes: Array<string | undefined> = []
      const hold = await holdDatabase(fx.database.db)
      try {
        for (let i = 0; i < 80; i++) emit(socket, 'service', findMany, (r) => codes.push(r.error?.code))
        await until(() => codes.length === 8)
        expect(codes).toEqual(Array(8).fill('TOO_MANY_REQUESTS'))
        expect(server.tidesync.requests).toEqual({ running: 8, queued: 64 })
      } finally {
        await hold.release()
      }
      await until(() => codes.length === 80)
    } finally {
      await server.close()
    }
  })
})
