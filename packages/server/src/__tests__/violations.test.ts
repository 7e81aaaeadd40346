import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reply, WireError } from '../protocol.js'
import type { Logger } from '../types.js'
import { clientClock } from './fixtures/clock.js'
import { type SocketFixture, startSocketFixture, type TestClient } from './fixtures/socket-server.js'

const MAX_MESSAGE = 20_000

function request<T = unknown>(socket: TestClient, event: string, payload: unknown): Promise<Reply<T>> {
  return (
    socket.timeout(10_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<Reply<T>> }
  ).emitWithAck(event, payload)
}

/** Sends without waiting for an answer (the answer may never come once the socket is closed). */
function send(socket: TestClient, event: string, payload: unknown): void {
  ;(socket as unknown as { emit(e: string, p: unknown): void }).emit(event, payload)
}

/** Resolves with the disconnect reason. */
function disconnected(socket: TestClient): Promise<string> {
  return new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason)))
}

/** One invalid request of each kind the policy counts, cycled. */
function violations(uid: string): Array<[string, unknown]> {
  return [
    ['service', { model: 'ghosts', method: 'findMany', args: {} }],
    ['service', { model: 'todos', method: 'findMany', args: { where: { secret: 1 } } }],
    ['sync:pull', { model: 'todos', checkpoint: 'yesterday' }],
    ['sync:nope', {}],
    [
      'service',
      JSON.parse(`{"model":"todos","method":"update","args":{"uid":"${uid}","patch":{"__proto__":{}}}}`),
    ],
    ['sync:full', { model: 'todos', metadata: { [uuidv7()]: { created_at: 'x'.repeat(MAX_MESSAGE) } } }],
    ['subscribe', { model: 'todos', where: { nope: true } }],
    // A push whose only change names a column the model does not have.
    [
      'sync:push',
      {
        clientId: 'hostile',
        changes: [
          {
            id: uuidv7(),
            model: 'todos',
            uid,
            op: 'update',
            patch: { nope: 1 },
            clock: clientClock(Date.now(), 'h'),
          },
        ],
      },
    ],
  ]
}

describe('per-socket violation policy (default: 20 violations in 10 s)', () => {
  let fx: SocketFixture
  const clock = { now: Date.UTC(2026, 5, 1) }
  const warnings: string[] = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message) => warnings.push(message),
    error: (message) => warnings.push(`error: ${message}`),
  }

  beforeAll(async () => {
    fx = await startSocketFixture({
      maxMessageBytes: MAX_MESSAGE,
      maxHttpBufferSize: 100_000,
      logger,
      now: () => clock.now,
    })
  })
  afterAll(async () => {
    await fx?.close()
  })

  it('disconnects a socket that keeps sending invalid requests, with a final tidesync:error; others keep working', async () => {
    const bob = await fx.client('bob')
    const hostile = await fx.client('alice')
    const finalErrors: WireError[] = []
    hostile.on('tidesync:error', (error) => finalErrors.push(error))
    const closed = disconnected(hostile)
    const uid = uuidv7()
    const kinds = violations(uid)
    // 19 violations are answered as usual (typed errors), and the socket stays.
    for (let i = 0; i < 19; i++) {
      const [event, payload] = kinds[i % kinds.length]!
      if (event === 'sync:push') {
        const reply = await request<{ outcomes: Array<{ status: string; error?: WireError }> }>(
          hostile,
          event,
          payload,
        )
        expect(reply.result?.outcomes[0]).toMatchObject({
          status: 'rejected',
          error: { code: 'UNKNOWN_COLUMN' },
        })
      } else if (event === 'sync:nope') {
        send(hostile, event, payload) // no ack: counted all the same
      } else {
        const reply = await request(hostile, event, payload)
        expect(reply.error?.code, event).toMatch(/^[A-Z_]+$/)
      }
    }
    expect(hostile.connected).toBe(true)
    // The 20th within the window: a final typed error, then the server closes the socket.
    send(hostile, 'service', { model: 'ghosts', method: 'findMany', args: {} })
    expect(await closed).toBe('io server disconnect')
    expect(finalErrors).toEqual([
      { code: 'TOO_MANY_VIOLATIONS', message: expect.stringMatching(/20 invalid requests within 10000 ms/) },
    ])
    expect(warnings.some((w) => /^disconnecting socket .*20 invalid requests/.test(w))).toBe(true)
    // Everyone else is served as before, and the same user may connect again.
    const list = await request<unknown[]>(bob, 'service', { model: 'todos', method: 'findMany', args: {} })
    expect(list.result).toEqual([])
    const again = await fx.client('alice')
    expect(
      (await request(again, 'service', { model: 'todos', method: 'findMany', args: {} })).result,
    ).toEqual([])
  })

  it('never disconnects a client whose errors are occasional, or not boundary violations', async () => {
    const alice = await fx.client('alice')
    const bob = await fx.client('bob')
    const bobs = await request<{ record: { uid: string } }>(bob, 'service', {
      model: 'todos',
      method: 'create',
      args: { data: { ownerId: 'bob', title: 'mine' } },
    })
    const kinds = violations(uuidv7())
    // 19 violations in each of three windows of 10 s: never 20 within one.
    for (let window = 0; window < 3; window++) {
      for (let i = 0; i < 19; i++) {
        const [event, payload] = kinds[i % kinds.length]!
        if (event === 'sync:nope') send(alice, event, payload)
        else await request(alice, event, payload)
      }
      clock.now += 10_001
    }
    // Refusals of well-formed requests are not violations: outside the scope, missing records.
    for (let i = 0; i < 25; i++) {
      const forbidden = await request(alice, 'service', {
        model: 'todos',
        method: 'update',
        args: { uid: bobs.result!.record.uid, patch: { title: 'not yours' } },
      })
      expect(forbidden.error?.code).toBe('FORBIDDEN')
      const missing = await request(alice, 'service', {
        model: 'todos',
        method: 'delete',
        args: { uid: uuidv7() },
      })
      expect(missing.error?.code).toBe('NOT_FOUND')
    }
    expect(alice.connected).toBe(true)
    const list = await request<unknown[]>(alice, 'service', { model: 'todos', method: 'findMany', args: {} })
    expect(list.result).toEqual([])
  })

  it('logs a malformed frame through the logger; socket.io closes that connection, the server keeps serving', async () => {
    const client = await fx.client('alice')
    const closed = disconnected(client)
    const before = warnings.length
    // An engine.io message whose socket.io packet is not valid JSON.
    ;(client.io.engine as unknown as { write(data: string): void }).write('2["sync:push",{')
    expect(await closed).toBe('transport close')
    const logged = warnings.slice(before)
    expect(logged.some((w) => /malformed frame/.test(w))).toBe(true)
    const fresh = await fx.client('alice')
    expect(
      (await request(fresh, 'service', { model: 'todos', method: 'findMany', args: {} })).result,
    ).toEqual([])
  })
})

describe('per-socket violation policy, configured', () => {
  let fx: SocketFixture
  const clock = { now: Date.UTC(2026, 5, 1) }

  beforeAll(async () => {
    fx = await startSocketFixture({ violations: { maxViolations: 3, windowMs: 1000 }, now: () => clock.now })
  })
  afterAll(async () => {
    await fx?.close()
  })

  it('counts in a sliding window', async () => {
    const socket = await fx.client('alice')
    const closed = disconnected(socket)
    const bad = { model: 'ghosts', method: 'findMany', args: {} }
    await request(socket, 'service', bad) // t = 0
    clock.now += 600
    await request(socket, 'service', bad) // t = 600
    clock.now += 600
    // t = 1200: the first has left the window, two within it.
    expect((await request(socket, 'service', bad)).error?.code).toBe('UNKNOWN_MODEL')
    expect(socket.connected).toBe(true)
    clock.now += 100
    send(socket, 'service', bad) // t = 1300: three within 1000 ms
    expect(await closed).toBe('io server disconnect')
  })

  it('can be turned off', async () => {
    const off = await startSocketFixture({ violations: false })
    try {
      const socket = await off.client('alice')
      for (let i = 0; i < 40; i++) send(socket, 'sync:nope', {})
      const reply = await request(socket, 'service', { model: 'ghosts', method: 'findMany', args: {} })
      expect(reply.error?.code).toBe('UNKNOWN_MODEL')
      expect(socket.connected).toBe(true)
    } finally {
      await off.close()
    }
  })
})
