import { io as connect } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { ChangesPush, ErrorCode, Reply } from '../protocol.js'
import { clientClock } from './fixtures/clock.js'
import { todos } from './fixtures/schema.js'
import { type SocketFixture, startSocketFixture, type TestClient } from './fixtures/socket-server.js'

const MAX_MESSAGE = 20_000

/** Sends an event with an acknowledgement and returns the reply. */
function request<T = unknown>(socket: TestClient, event: string, payload: unknown): Promise<Reply<T>> {
  return (
    socket.timeout(10_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<Reply<T>> }
  ).emitWithAck(event, payload)
}

function collect(socket: TestClient): ChangesPush[] {
  const pushes: ChangesPush[] = []
  socket.on('changes', (push) => pushes.push(push))
  return pushes
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('socket.io plugin', () => {
  let fx: SocketFixture
  beforeAll(async () => {
    fx = await startSocketFixture({
      maxMessageBytes: MAX_MESSAGE,
      maxHttpBufferSize: 100_000,
      maxMetadataEntries: 50,
      // The bad-input test sends two dozen invalid requests on one socket in a row: above the
      // default violation limit (20 in 10 s), which violations.test.ts covers.
      violations: { maxViolations: 100 },
    })
  })
  afterAll(async () => {
    await fx?.close()
  })
  beforeEach(async () => {
    await fx.database.reset()
  })

  it('refuses a socket without valid credentials', async () => {
    await expect(fx.client('mallory')).rejects.toMatchObject({
      message: 'UNAUTHORIZED',
      data: { code: 'UNAUTHORIZED' },
    })
    const anonymous = connect(fx.url, { transports: ['websocket'], forceNew: true, reconnection: false })
    const error = await new Promise<Error & { data?: unknown }>((resolve) =>
      anonymous.once('connect_error', resolve),
    )
    expect(error.data).toMatchObject({ code: 'UNAUTHORIZED' })
    anonymous.disconnect()
  })

  it('serves services, full sync, pull and push over the socket', async () => {
    const alice = await fx.client('alice')
    const created = await request<{ record: { uid: string } }>(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { data: { ownerId: 'alice', title: 'over the wire' } },
    })
    const uid = created.result!.record.uid
    const many = await request<unknown[]>(alice, 'service', {
      model: 'todos',
      method: 'findMany',
      args: { where: { title: 'over the wire' } },
    })
    expect(many.result).toHaveLength(1)
    const full = await request<{ addClient: unknown[]; checkpoint: string; serverClock: string }>(
      alice,
      'sync:full',
      { model: 'todos', metadata: {} },
    )
    expect(full.result!.addClient).toHaveLength(1)
    const pushed = await request<{ outcomes: Array<{ status: string }> }>(alice, 'sync:push', {
      clientId: 'alice-phone',
      changes: [
        {
          id: '1',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 2 },
          clock: clientClock(Date.now(), 'phone'),
        },
      ],
    })
    expect(pushed.result!.outcomes[0]!.status).toBe('applied')
    const pulled = await request<{ upserts: Array<{ record: { likes: number } }> }>(alice, 'sync:pull', {
      model: 'todos',
      checkpoint: full.result!.checkpoint,
    })
    expect(pulled.result!.upserts[0]!.record.likes).toBe(2)
  })

  it('pushes committed changes live, per subscription where and per user scope', async () => {
    const alice = await fx.client('alice')
    const aliceOpen = await fx.client('alice')
    const bob = await fx.client('bob')
    const admin = await fx.client('admin')
    const seen = {
      alice: collect(alice),
      aliceOpen: collect(aliceOpen),
      bob: collect(bob),
      admin: collect(admin),
    }
    for (const [socket, where] of [
      [alice, undefined],
      [aliceOpen, { done: false }],
      [bob, undefined],
      [admin, { ownerId: 'bob' }],
    ] as const) {
      const reply = await request<{ subscriptionId: string }>(socket, 'subscribe', { model: 'todos', where })
      expect(reply.result?.subscriptionId).toBeTruthy()
    }
    const uid = uuidv7()
    const change = (id: string, body: Record<string, unknown>) =>
      request(alice, 'sync:push', {
        clientId: 'alice-laptop',
        changes: [{ id, model: 'todos', uid, clock: clientClock(Date.now(), 'laptop'), ...body }],
      })
    await change('1', { op: 'create', data: { ownerId: 'alice', title: 'live' } })
    await until(() => seen.alice.length === 1 && seen.aliceOpen.length === 1)
    expect(seen.alice[0]!.upserts[0]!.record).toMatchObject({ uid, title: 'live' })
    await change('2', { op: 'update', patch: { done: true } })
    await until(() => seen.alice.length === 2 && seen.aliceOpen.length === 2)
    expect(seen.aliceOpen[1]).toMatchObject({ upserts: [], evictions: [uid] })
    await change('3', { op: 'delete' })
    await until(() => seen.alice.length === 3)
    expect(seen.alice[2]!.deletes.map((d) => d.uid)).toEqual([uid])

    // Bob's changes reach Bob and the admin watching Bob's records, never Alice.
    const bobsUid = uuidv7()
    await request(bob, 'sync:push', {
      clientId: 'bob-phone',
      changes: [
        {
          id: '1',
          model: 'todos',
          uid: bobsUid,
          op: 'create',
          data: { ownerId: 'bob', title: 'bob only' },
          clock: clientClock(Date.now(), 'bob'),
        },
      ],
    })
    await until(() => seen.bob.length === 1 && seen.admin.length === 1)
    // A later change of Alice's arrives after Bob's would have: Alice's sockets saw nothing of Bob's.
    await request(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { data: { ownerId: 'alice', title: 'barrier' } },
    })
    await until(() => seen.alice.length === 4)
    expect(JSON.stringify([seen.alice, seen.aliceOpen])).not.toContain(bobsUid)
    expect(JSON.stringify(seen.bob)).not.toContain(uid)
    expect(seen.bob.flatMap((p) => p.upserts.map((u) => u.record.title))).toEqual(['bob only'])

    // Unsubscribe stops pushes; disconnect cleans up.
    const sub = await request<{ subscriptionId: string }>(bob, 'subscribe', { model: 'todos' })
    await request(bob, 'unsubscribe', { subscriptionId: sub.result!.subscriptionId })
    const before = fx.tidesync.subscriptionCount
    bob.disconnect()
    await until(() => fx.tidesync.subscriptionCount === before - 1)
  })

  it('a push whose acknowledgement was lost applies once when the client sends it again', async () => {
    const first = await fx.client('alice')
    const uid = uuidv7()
    await request(first, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid, data: { ownerId: 'alice', title: 'counted' } },
    })
    const push = {
      clientId: 'alice-tablet',
      changes: [
        {
          id: 'like-1',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 5 },
          clock: clientClock(Date.now(), 'tablet'),
        },
      ],
    }
    // The connection drops right after the push is sent: the client never gets the answer.
    first.emit('sync:push', push as never, () => {})
    first.disconnect()
    const second = await fx.client('alice')
    const retried = await request<{ outcomes: Array<{ status: string }> }>(second, 'sync:push', push)
    expect(['applied', 'duplicate']).toContain(retried.result!.outcomes[0]!.status)
    const again = await request<{ outcomes: Array<{ status: string }> }>(second, 'sync:push', push)
    expect(again.result!.outcomes[0]!.status).toBe('duplicate')
    const found = await request<{ record: { likes: number } }>(second, 'service', {
      model: 'todos',
      method: 'findUnique',
      args: { uid },
    })
    expect(found.result!.record.likes).toBe(5)
  })

  it('a client cannot read, sync, push or receive a live push outside its scope', async () => {
    // authenticate: unknown, missing and failing credentials are all refused.
    for (const token of ['mallory', '', 'explode']) {
      await expect(fx.client(token)).rejects.toMatchObject({ data: { code: 'UNAUTHORIZED' } })
    }
    const alice = await fx.client('alice')
    const bob = await fx.client('bob')
    const admin = await fx.client('admin')
    const aliceLive = collect(alice)
    for (const where of [undefined, { ownerId: 'bob' }]) {
      expect((await request(alice, 'subscribe', { model: 'todos', where })).error).toBeUndefined()
    }
    const fingerprint = async () =>
      (
        await fx.database.db.execute(
          "SELECT (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY uid), '')) FROM todos t) AS rows, (SELECT count(*) FROM tidesync_changes) AS changes",
        )
      ).rows
    const bobsUid = uuidv7()
    await request(bob, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid: bobsUid, data: { ownerId: 'bob', title: 'bob secret' } },
    })
    const { result: start } = await request<{ checkpoint: string }>(alice, 'sync:full', {
      model: 'todos',
      metadata: {},
    })

    // Read.
    const read = await Promise.all([
      request(alice, 'service', { model: 'todos', method: 'findUnique', args: { uid: bobsUid } }),
      request(alice, 'service', { model: 'todos', method: 'findMany', args: {} }),
      request(alice, 'service', { model: 'todos', method: 'findMany', args: { where: { ownerId: 'bob' } } }),
    ])
    expect(read.map((r) => r.result)).toEqual([null, [], []])

    // Sync: naming Bob's uid evicts it; pulls from "0" or a checkpoint show nothing of his.
    const full = await request<{ evictClient: string[]; addClient: unknown[] }>(alice, 'sync:full', {
      model: 'todos',
      where: { ownerId: 'bob' },
      metadata: { [bobsUid]: { created_at: '2020-01-01T00:00:00Z', updated_at: '2020-01-01T00:00:00Z' } },
    })
    expect(full.result).toMatchObject({ addClient: [], evictClient: [bobsUid] })
    const pulls = await Promise.all([
      request(alice, 'sync:pull', { model: 'todos', checkpoint: '0' }),
      request(alice, 'sync:pull', { model: 'todos', where: { ownerId: 'bob' }, checkpoint: 'r:0' }),
    ])
    for (const pull of pulls) expect(pull.result).toMatchObject({ upserts: [], deletes: [], evictions: [] })

    // Push and write services: every change to Bob's record, or into Bob's scope, is refused.
    const before = await fingerprint()
    const clock = () => clientClock(Date.now(), 'alice')
    const pushed = await request<{ outcomes: Array<{ status: string; error?: { code: string } }> }>(
      alice,
      'sync:push',
      {
        clientId: 'alice-laptop',
        changes: [
          { id: '1', model: 'todos', uid: bobsUid, op: 'update', patch: { title: 'pwned' }, clock: clock() },
          { id: '2', model: 'todos', uid: bobsUid, op: 'increment', deltas: { likes: 9 }, clock: clock() },
          { id: '3', model: 'todos', uid: bobsUid, op: 'delete', clock: clock() },
          {
            id: '4',
            model: 'todos',
            uid: bobsUid,
            op: 'create',
            data: { ownerId: 'alice', title: 'stolen' },
            clock: clock(),
          },
          {
            id: '5',
            model: 'todos',
            uid: uuidv7(),
            op: 'create',
            data: { ownerId: 'bob', title: 'planted' },
            clock: clock(),
          },
        ],
      },
    )
    expect(pushed.result!.outcomes.map((o) => o.error?.code)).toEqual(Array(5).fill('FORBIDDEN'))
    for (const args of [
      { method: 'update', args: { uid: bobsUid, patch: { title: 'pwned' } } },
      { method: 'delete', args: { uid: bobsUid } },
      { method: 'create', args: { uid: bobsUid, data: { ownerId: 'alice', title: 'stolen' } } },
    ]) {
      expect((await request(alice, 'service', { model: 'todos', ...args })).error?.code).toBe('FORBIDDEN')
    }
    expect(await fingerprint()).toEqual(before)

    // Live: Bob's changes never reach Alice, also through a subscription asking for Bob's records.
    await request(bob, 'service', {
      model: 'todos',
      method: 'update',
      args: { uid: bobsUid, patch: { title: 'bob secret 2' } },
    })
    // A record handed from Alice to Bob reaches her once more, as an eviction naming only its uid.
    const handed = uuidv7()
    await request(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid: handed, data: { ownerId: 'alice', title: 'soon bob' } },
    })
    await request(admin, 'service', {
      model: 'todos',
      method: 'update',
      args: { uid: handed, patch: { ownerId: 'bob', title: 'now secret' } },
    })
    await request(bob, 'service', { model: 'todos', method: 'delete', args: { uid: bobsUid } })
    // Alice's own later change is a barrier: everything before it has been fanned out.
    await request(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { data: { ownerId: 'alice', title: 'barrier' } },
    })
    await until(() => aliceLive.some((p) => p.upserts.some((u) => u.record.title === 'barrier')))
    const live = JSON.stringify(aliceLive)
    expect(live).not.toContain(bobsUid)
    expect(live).not.toContain('secret')
    expect(aliceLive.flatMap((p) => p.evictions)).toEqual([handed])
    const after = await request<{ upserts: unknown[]; deletes: unknown[]; evictions: string[] }>(
      alice,
      'sync:pull',
      { model: 'todos', checkpoint: start!.checkpoint },
    )
    expect(JSON.stringify(after.result)).not.toContain('secret')
    expect(after.result!.evictions).toEqual([handed])
  })

  it('answers bad input with { error: { code, message } }, writes nothing and keeps serving', async () => {
    const alice = await fx.client('alice')
    const uid = uuidv7()
    await request(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid, data: { ownerId: 'alice', title: 'keep' } },
    })
    const before = await fx.database.db.execute(
      'SELECT count(*)::int AS n, (SELECT max(rev) FROM tidesync_meta) AS rev FROM todos',
    )
    const cases: Array<[string, unknown, ErrorCode]> = [
      ['service', { model: 'ghosts', method: 'findMany', args: {} }, 'UNKNOWN_MODEL'],
      ['service', { model: 'todos', method: 'drop', args: {} }, 'UNKNOWN_METHOD'],
      ['sync:nope', {}, 'UNKNOWN_METHOD'],
      ['service', { model: 'todos', method: 'findMany', args: { where: { secret: 1 } } }, 'UNKNOWN_COLUMN'],
      [
        'service',
        { model: 'todos', method: 'update', args: { uid, patch: { priority: 'high' } } },
        'INVALID_TYPE',
      ],
      [
        'service',
        { model: 'todos', method: 'update', args: { uid, patch: { dueAt: '2024-02-30T10:00:00Z' } } },
        'INVALID_DATE',
      ],
      [
        'service',
        JSON.parse(
          `{"model":"todos","method":"update","args":{"uid":"${uid}","patch":{"__proto__":{"admin":true}}}}`,
        ),
        'FORBIDDEN_KEY',
      ],
      [
        'sync:full',
        JSON.parse('{"model":"todos","metadata":{"constructor":{"created_at":"2024-01-01T00:00:00Z"}}}'),
        'FORBIDDEN_KEY',
      ],
      ['sync:pull', { model: 'todos', checkpoint: 'yesterday' }, 'BAD_REQUEST'],
      ['sync:push', { clientId: 'x', changes: 'all of them' }, 'BAD_REQUEST'],
      [
        'sync:full',
        { model: 'todos', metadata: { [uuidv7()]: { created_at: 'x'.repeat(MAX_MESSAGE) } } },
        'PAYLOAD_TOO_LARGE',
      ],
      ['subscribe', { model: 'todos', where: { nope: true } }, 'UNKNOWN_COLUMN'],
      ['service', null, 'BAD_REQUEST'],
      // Wrong types and dates inside sync payloads.
      [
        'sync:full',
        { model: 'todos', metadata: { [uuidv7()]: { created_at: 1700000000000 } } },
        'INVALID_TYPE',
      ],
      [
        'sync:full',
        { model: 'todos', metadata: { 'not-a-uuid': { created_at: '2024-01-01T00:00:00Z' } } },
        'INVALID_TYPE',
      ],
      ['sync:full', { model: 'todos', where: { done: 'yes' }, metadata: {} }, 'INVALID_TYPE'],
      [
        'sync:pull',
        { model: 'todos', where: { dueAt: { lt: '2024-13-01' } }, checkpoint: '0' },
        'INVALID_DATE',
      ],
      ['sync:pull', { model: 'todos', checkpoint: '0', limit: 'all' }, 'BAD_REQUEST'],
      ['sync:push', { clientId: 'x', changes: [{ id: 1 }] }, 'BAD_REQUEST'],
      [
        'service',
        JSON.parse('{"model":"todos","method":"findMany","args":{"where":{"constructor":{"prototype":1}}}}'),
        'FORBIDDEN_KEY',
      ],
      // The metadata dictionary over maxMetadataEntries (50 here).
      [
        'sync:full',
        {
          model: 'todos',
          metadata: Object.fromEntries(
            Array.from({ length: 51 }, () => [uuidv7(), { created_at: '2024-01-01T00:00:00Z' }]),
          ),
        },
        'PAYLOAD_TOO_LARGE',
      ],
      // Binary attachments are not JSON.
      [
        'service',
        { model: 'todos', method: 'findMany', args: { where: { title: Buffer.from('x') } } },
        'BAD_REQUEST',
      ],
    ]
    for (const [event, payload, code] of cases) {
      const reply = await request(alice, event, payload)
      expect(reply.error, `${event} ${JSON.stringify(payload).slice(0, 80)}`).toMatchObject({
        code,
        message: expect.any(String),
      })
    }
    // A message over socket.io's own limit (maxHttpBufferSize) never reaches a handler: socket.io
    // closes the connection before reading it, so no answer is possible.
    const big = await fx.client('alice')
    const dropped = new Promise<{ reason: string; code?: number }>((resolve) =>
      big.once('disconnect', (reason, details) =>
        resolve({ reason, code: (details as { context?: { code?: number } } | undefined)?.context?.code }),
      ),
    )
    ;(big as unknown as { emit(event: string, payload: unknown): void }).emit('sync:full', {
      model: 'todos',
      metadata: { pad: 'x'.repeat(200_000) },
    })
    // WebSocket close code 1009 (Message Too Big): PROTOCOL.md tells clients to read it as PAYLOAD_TOO_LARGE.
    expect(await dropped).toEqual({ reason: 'transport close', code: 1009 })
    const after = await fx.database.db.execute(
      'SELECT count(*)::int AS n, (SELECT max(rev) FROM tidesync_meta) AS rev FROM todos',
    )
    expect(after.rows).toEqual(before.rows)
    // Still serving, on the old socket and on new ones.
    expect(
      (await request(alice, 'service', { model: 'todos', method: 'findUnique', args: { uid } })).result,
    ).toBeTruthy()
    const fresh = await fx.client('alice')
    expect(
      (await request<unknown[]>(fresh, 'service', { model: 'todos', method: 'findMany', args: {} })).result,
    ).toHaveLength(1)
  })
})

describe('socket.io plugin with a write buffer', () => {
  let fx: SocketFixture
  beforeAll(async () => {
    fx = await startSocketFixture({
      writeBuffer: true,
      models: {
        todos: {
          table: todos,
          buffered: true,
          counters: ['likes'],
          scope: (ctx) => (ctx.userId ? { ownerId: ctx.userId } : undefined),
          canWrite: (_ctx, record, { op }) =>
            op === 'delete' || (!String(record.title).startsWith('nope') && Number(record.likes) <= 100),
        },
      },
    })
  })
  afterAll(async () => {
    await fx?.close()
  })

  it('a push refused by scope or canWrite never reaches the buffer, another client, or the table at the next flush', async () => {
    const alice = await fx.client('alice')
    const bob = await fx.client('bob')
    const admin = await fx.client('admin')
    const mine = uuidv7()
    const bobs = uuidv7()
    const create = async (socket: TestClient, uid: string, ownerId: string, title: string) =>
      expect(
        (
          await request(socket, 'service', {
            model: 'todos',
            method: 'create',
            args: { uid, data: { ownerId, title } },
          })
        ).error,
      ).toBeUndefined()
    await create(alice, mine, 'alice', 'mine')
    await create(bob, bobs, 'bob', 'bobs')
    const seen = { bob: collect(bob), admin: collect(admin) }
    for (const socket of [bob, admin]) {
      expect((await request(socket, 'subscribe', { model: 'todos' })).error).toBeUndefined()
    }
    const clock = () => clientClock(Date.now(), 'alice')
    const pushed = await request<{ outcomes: Array<{ status: string; error?: { code: ErrorCode } }> }>(
      alice,
      'sync:push',
      {
        clientId: 'alice-phone',
        changes: [
          { id: '1', model: 'todos', uid: bobs, op: 'update', patch: { title: 'pwned' }, clock: clock() },
          { id: '2', model: 'todos', uid: bobs, op: 'increment', deltas: { likes: 9 }, clock: clock() },
          {
            id: '3',
            model: 'todos',
            uid: mine,
            op: 'update',
            patch: { ownerId: 'bob', title: 'planted' },
            clock: clock(),
          },
          {
            id: '4',
            model: 'todos',
            uid: mine,
            op: 'update',
            patch: { title: 'nope, planted' },
            clock: clock(),
          },
          { id: '5', model: 'todos', uid: mine, op: 'increment', deltas: { likes: 500 }, clock: clock() },
        ],
      },
    )
    expect(pushed.result!.outcomes.map((o) => o.error?.code)).toEqual(Array(5).fill('FORBIDDEN'))
    for (const args of [
      { uid: bobs, patch: { title: 'pwned' } },
      { uid: mine, patch: { ownerId: 'bob', title: 'planted' } },
      { uid: mine, patch: { title: 'nope, planted' } },
    ]) {
      expect((await request(alice, 'service', { model: 'todos', method: 'update', args })).error?.code).toBe(
        'FORBIDDEN',
      )
    }
    // An accepted change (pending in the buffer) is the barrier: everything before it was fanned out.
    const barrier = await request(alice, 'sync:push', {
      clientId: 'alice-phone',
      changes: [{ id: '6', model: 'todos', uid: mine, op: 'update', patch: { done: true }, clock: clock() }],
    })
    expect(barrier.error).toBeUndefined()
    await until(() => seen.admin.some((p) => p.upserts.some((u) => u.record.uid === mine)))
    expect(JSON.stringify(seen)).not.toMatch(/pwned|planted/)
    expect(seen.bob).toEqual([])
    expect(seen.admin.flatMap((p) => p.upserts.map((u) => u.record))).toEqual([
      expect.objectContaining({ uid: mine, ownerId: 'alice', title: 'mine', likes: 0, done: true }),
    ])

    const check = async () => {
      const bobsView = await request<Array<{ record: Record<string, unknown> }>>(bob, 'service', {
        model: 'todos',
        method: 'findMany',
        args: {},
      })
      expect(bobsView.result!.map((r) => r.record)).toEqual([
        expect.objectContaining({ uid: bobs, ownerId: 'bob', title: 'bobs', likes: 0 }),
      ])
      const pull = await request<{ upserts: Array<{ record: Record<string, unknown> }> }>(bob, 'sync:pull', {
        model: 'todos',
        checkpoint: '0',
      })
      expect(pull.result!.upserts.map((u) => u.record.uid)).toEqual([bobs])
      const all = await request<Array<{ record: Record<string, unknown> }>>(admin, 'service', {
        model: 'todos',
        method: 'findMany',
        args: {},
      })
      expect(JSON.stringify(all.result)).not.toMatch(/pwned|planted/)
      expect(all.result!.map((r) => r.record.likes)).toEqual([0, 0])
    }
    await check()
    await fx.buffer!.flush()
    const rows = await fx.database.db.execute(
      'SELECT owner_id, title, likes, done FROM todos ORDER BY owner_id',
    )
    expect(rows.rows).toEqual([
      { owner_id: 'alice', title: 'mine', likes: 0, done: true },
      { owner_id: 'bob', title: 'bobs', likes: 0, done: false },
    ])
    await check()
  })
})
