import { formatHlc } from '@tidesync/protocol'
import { sql } from 'drizzle-orm'
import fc from 'fast-check'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rowsOf } from '../db/types.js'
import type { ErrorCode, Reply } from '../protocol.js'
import { type SocketFixture, startSocketFixture, type TestClient } from './fixtures/socket-server.js'

/**
 * Random payloads at the socket boundary, sent by a scoped user (alice). For every payload:
 * a typed answer (`{ result }` of the right shape, or `{ error: { code, message } }` with a
 * known code, never INTERNAL), nothing of Bob's in it, nothing written when the answer is an
 * error, and the server still answers a valid request afterwards.
 */

const RUNS = 200
const SECRET = 'bobs-secret-title'
const CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'BAD_REQUEST',
  'UNKNOWN_MODEL',
  'UNKNOWN_METHOD',
  'UNKNOWN_COLUMN',
  'INVALID_TYPE',
  'INVALID_DATE',
  'FORBIDDEN_KEY',
  'PAYLOAD_TOO_LARGE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CHECKPOINT_EXPIRED',
  'UNAVAILABLE',
])

const COLUMNS = ['uid', 'ownerId', 'title', 'done', 'priority', 'likes', 'dueAt', 'tags']

function request(socket: TestClient, event: string, payload: unknown): Promise<Reply<unknown>> {
  return (
    socket.timeout(10_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<Reply<unknown>> }
  ).emitWithAck(event, payload)
}

// Building blocks: mostly well-formed, with a corruption now and then, so that payloads get past
// the first check and reach the database -----------------------------------------------------------

const uids = { alice: [] as string[], bob: '' }

/** Usually `good`, sometimes `bad`. */
function mostly<T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>, odds = 8): fc.Arbitrary<T | U> {
  return fc.oneof({ weight: odds, arbitrary: good }, { weight: 1, arbitrary: bad })
}

const badKeyArb = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'owner_id', 'nope'),
  fc.string({ maxLength: 8 }),
)
const keyArb = mostly(fc.constantFrom(...COLUMNS), badKeyArb, 12)
const dateStringArb = mostly(
  fc
    .date({ min: new Date('1990-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    '2024-02-30',
    '2024-02-30T10:00:00Z',
    'yesterday',
    '2026-13-01T00:00:00Z',
    '2026-01-01T25:00:00Z',
    '',
  ),
  5,
)
const scalarArb = fc.oneof(
  fc.integer(),
  fc.constantFrom(2 ** 40, -1, 0, 1e308, -0.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
  dateStringArb,
)
const valueArb = fc.oneof(
  { weight: 5, arbitrary: scalarArb },
  { weight: 1, arbitrary: fc.array(scalarArb, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(keyArb, scalarArb, { maxKeys: 3 }) },
)
/** Well-typed values per column (the owner is mostly the caller), each now and then wrong. */
const columnArbs: Record<string, fc.Arbitrary<unknown>> = {
  ownerId: mostly(fc.constantFrom('alice', 'alice', 'alice', 'bob'), scalarArb),
  title: mostly(fc.string({ maxLength: 20 }), scalarArb),
  done: mostly(fc.boolean(), scalarArb),
  priority: mostly(fc.integer({ min: -5, max: 5 }), scalarArb),
  likes: mostly(fc.integer({ min: 0, max: 100 }), scalarArb),
  dueAt: mostly(fc.oneof(dateStringArb, fc.constant(null)), scalarArb),
  tags: mostly(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)),
}
const uidArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null).map(() => uids.alice[0]!) },
  { weight: 3, arbitrary: fc.nat().map((i) => uids.alice[i % uids.alice.length]!) },
  { weight: 2, arbitrary: fc.constant(null).map(() => uids.bob) },
  { weight: 3, arbitrary: fc.uuid() },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('__proto__', ''), fc.integer()),
  },
)
/** A create's data or an update's patch: some columns, now and then an unknown or forbidden key. */
const dataArb = mostly(
  fc
    .tuple(
      fc.record(columnArbs, { requiredKeys: [] }),
      mostly(fc.constant({}), fc.dictionary(badKeyArb, valueArb, { minKeys: 1, maxKeys: 1 }), 10),
    )
    .map(([data, extra]) => ({ ...data, ...extra })),
  fc.jsonValue({ maxDepth: 2 }),
  10,
)
const whereValueArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.record({ in: fc.array(scalarArb, { maxLength: 4 }) }) },
  {
    weight: 2,
    arbitrary: fc.record(
      { gte: scalarArb, gt: scalarArb, lte: scalarArb, lt: scalarArb },
      { requiredKeys: [] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.dictionary(fc.constantFrom('in', 'gte', 'near', '__proto__', 'constructor'), valueArb, {
      maxKeys: 2,
    }),
  },
)
const whereArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 4,
    arbitrary: fc
      .record(columnArbs, { requiredKeys: [] })
      .chain((where) =>
        fc
          .dictionary(fc.constantFrom(...Object.keys(where)), whereValueArb, { maxKeys: 1 })
          .map((ops) => ({ ...where, ...ops })),
      )
      .map((where) => {
        // Filters on JSON columns are refused: keep them rare.
        const { tags: _tags, ...rest } = where as Record<string, unknown>
        return rest
      }),
  },
  { weight: 1, arbitrary: fc.dictionary(keyArb, whereValueArb, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
)
const clockArb = mostly(
  fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }).map((ms) => formatHlc(ms, 0, 'fuzz')),
  fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.constant(null), dateStringArb),
  6,
)
const modelArb = mostly(
  fc.constant('todos'),
  fc.oneof(fc.constantFrom('ghosts', '__proto__', 'constructor', ''), fc.integer(), fc.constant(null)),
  12,
)
/** A payload with now and then a field dropped or added, or replaced by any JSON. */
function mangled<T extends Record<string, unknown>>(arb: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 12, arbitrary: arb },
    {
      weight: 1,
      arbitrary: fc
        .tuple(arb, fc.dictionary(keyArb, valueArb, { minKeys: 1, maxKeys: 2 }))
        .map(([payload, extra]) => ({ ...payload, ...extra })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(arb, fc.nat()).map(([payload, n]) => {
        const keys = Object.keys(payload)
        if (keys.length === 0) return payload
        const { [keys[n % keys.length]!]: _dropped, ...rest } = payload
        return rest
      }),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  )
}

// Payloads per event ------------------------------------------------------------------------------

const metadataEntryArb = mostly(
  fc.record(
    {
      created_at: dateStringArb,
      updated_at: mostly(dateStringArb, fc.constant(null), 3),
      deleted_at: mostly(fc.constant(null), dateStringArb, 3),
    },
    { requiredKeys: ['created_at'] },
  ),
  valueArb,
  12,
)
const fullArb = mangled(
  fc.record(
    {
      model: modelArb,
      where: whereArb,
      metadata: mostly(
        fc
          .array(fc.tuple(uidArb, metadataEntryArb), { maxLength: 25 })
          .map((entries) => Object.fromEntries(entries.map(([k, v]) => [String(k), v]))),
        valueArb,
        12,
      ),
    },
    { requiredKeys: ['model', 'metadata'] },
  ),
)
const pullArb = mangled(
  fc.record(
    {
      model: modelArb,
      where: whereArb,
      checkpoint: mostly(
        fc.oneof(
          fc.constant('0'),
          fc.nat({ max: 200 }).map((n) => `r:${n}`),
        ),
        fc.oneof(fc.constantFrom('s:0:1:0:x', 'r:-1', '', 'r:99999999999999999'), scalarArb),
        6,
      ),
      limit: mostly(
        fc.integer({ min: 1, max: 50 }),
        fc.oneof(fc.integer({ min: -2, max: 6000 }), scalarArb),
        4,
      ),
    },
    { requiredKeys: ['model', 'checkpoint'] },
  ),
)
const changeArb = fc.oneof(
  fc.record({
    op: fc.constant('create'),
    uid: uidArb,
    data: fc
      .tuple(dataArb, fc.string({ maxLength: 10 }))
      .map(([data, title]) => ({ ownerId: 'alice', title, ...(data as object) })),
  }),
  fc.record({ op: fc.constant('update'), uid: uidArb, patch: dataArb }),
  fc.record({ op: fc.constant('delete'), uid: uidArb }),
  fc.record({
    op: fc.constant('increment'),
    uid: uidArb,
    deltas: mostly(
      fc.record({ likes: fc.integer({ min: -5, max: 5 }) }),
      fc.dictionary(keyArb, scalarArb, { maxKeys: 2 }),
      4,
    ),
  }),
  fc.record({ op: scalarArb, uid: uidArb }),
)
const pushArb = mangled(
  fc.record({
    clientId: mostly(fc.constantFrom('fuzz-a', 'fuzz-b'), scalarArb),
    changes: mostly(
      fc
        .array(
          fc
            .tuple(
              changeArb,
              mostly(fc.uuid(), fc.oneof(fc.string({ maxLength: 2 }), scalarArb)),
              modelArb,
              clockArb,
            )
            .map(([change, id, model, clock]) => ({ id, model, clock, ...change })),
          { maxLength: 12 },
        )
        .chain((changes) => mangledChanges(changes)),
      valueArb,
      12,
    ),
  }),
)
function mangledChanges(changes: Array<Record<string, unknown>>): fc.Arbitrary<unknown[]> {
  return fc
    .array(fc.nat(), { maxLength: 1 })
    .map((picks) => changes.map((change, i) => (picks.includes(i) ? { ...change, extra: true } : change)))
}
const serviceArb = mangled(
  fc.oneof(
    fc.record({ model: modelArb, method: fc.constant('findUnique'), args: fc.record({ uid: uidArb }) }),
    fc.record({
      model: modelArb,
      method: fc.constant('findMany'),
      args: fc.record(
        { where: whereArb, limit: mostly(fc.integer({ min: 1, max: 20 }), scalarArb, 4) },
        { requiredKeys: [] },
      ),
    }),
    fc.record({
      model: modelArb,
      method: fc.constant('create'),
      args: fc.record(
        {
          uid: uidArb,
          data: fc
            .tuple(dataArb, fc.string({ maxLength: 10 }))
            .map(([data, title]) => ({ ownerId: 'alice', title, ...(data as object) })),
          clock: clockArb,
        },
        { requiredKeys: ['data'] },
      ),
    }),
    fc.record({
      model: modelArb,
      method: fc.constant('update'),
      args: fc.record({ uid: uidArb, patch: dataArb, clock: clockArb }, { requiredKeys: ['uid', 'patch'] }),
    }),
    fc.record({
      model: modelArb,
      method: fc.constant('delete'),
      args: fc.record({ uid: uidArb, clock: clockArb }, { requiredKeys: ['uid'] }),
    }),
    fc.record({
      model: modelArb,
      method: fc.oneof(fc.constantFrom('drop', '__proto__', 'constructor', 'toString'), scalarArb),
      args: valueArb,
    }),
  ),
)

// The properties ------------------------------------------------------------------------------------

describe('fuzzed payloads at the socket boundary', () => {
  let fx: SocketFixture
  let alice: TestClient

  /** One query that changes whenever anything tidesync stores changes. */
  const fingerprint = async () =>
    rowsOf(
      await fx.database.db.execute(sql`SELECT
        (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY uid), '')) FROM todos t) AS todos,
        (SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY model, uid), '')) FROM tidesync_meta m) AS meta,
        (SELECT count(*) FROM tidesync_changes) AS changes,
        (SELECT count(*) FROM tidesync_applied) AS applied`),
    )[0]

  beforeAll(async () => {
    fx = await startSocketFixture({
      maxMetadataEntries: 20,
      maxChangesPerPush: 10,
      maxMessageBytes: 50_000,
      maxHttpBufferSize: 200_000,
      // Hundreds of invalid requests on one socket, on purpose: the violation policy (which
      // would disconnect it) has its own tests in violations.test.ts.
      violations: false,
    })
    const bob = await fx.client('bob')
    uids.bob = uuidv7()
    await request(bob, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid: uids.bob, data: { ownerId: 'bob', title: SECRET, tags: { secret: SECRET } } },
    })
    alice = await fx.client('alice')
    for (let i = 0; i < 4; i++) {
      const uid = uuidv7()
      uids.alice.push(uid)
      await request(alice, 'service', {
        model: 'todos',
        method: 'create',
        args: { uid, data: { ownerId: 'alice', title: `mine ${i}`, priority: i } },
      })
    }
  })
  afterAll(async () => {
    await fx?.close()
  })

  async function check(event: string, payload: unknown, validResult: (result: unknown) => boolean) {
    const before = await fingerprint()
    const reply = await request(alice, event, payload)
    const text = JSON.stringify(reply)
    expect(text).not.toContain(SECRET)
    if (reply.error) {
      expect(CODES.has(reply.error.code), `unexpected code ${reply.error.code}: ${reply.error.message}`).toBe(
        true,
      )
      expect(typeof reply.error.message).toBe('string')
      expect(await fingerprint()).toEqual(before)
    } else {
      expect(reply).toHaveProperty('result')
      expect(validResult(reply.result), text.slice(0, 300)).toBe(true)
    }
    expect(alice.connected).toBe(true)
    return reply
  }

  const isArray = (value: unknown) => Array.isArray(value)
  const obj = (value: unknown) => value as Record<string, unknown>

  /** A valid write and read answer normally, on this socket and on a new one. */
  async function stillServing() {
    const uid = uuidv7()
    const created = await request(alice, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid, data: { ownerId: 'alice', title: 'still here' } },
    })
    expect(created.error).toBeUndefined()
    const fresh = await fx.client('alice')
    const found = await request(fresh, 'service', { model: 'todos', method: 'findUnique', args: { uid } })
    expect(found.result).toMatchObject({ record: { uid, title: 'still here' } })
    const pulled = await request(fresh, 'sync:pull', { model: 'todos', checkpoint: '0' })
    expect(pulled.error).toBeUndefined()
    fresh.disconnect()
  }

  it('sync:full', async () => {
    await fc.assert(
      fc.asyncProperty(fullArb, async (payload) => {
        await check(
          'sync:full',
          payload,
          (r) =>
            [
              'addClient',
              'updateClient',
              'deleteClient',
              'evictClient',
              'addDatabase',
              'updateDatabase',
            ].every((k) => isArray(obj(r)[k])) && typeof obj(r).checkpoint === 'string',
        )
      }),
      { numRuns: RUNS },
    )
    await stillServing()
  })

  it('sync:pull', async () => {
    await fc.assert(
      fc.asyncProperty(pullArb, async (payload) => {
        await check(
          'sync:pull',
          payload,
          (r) => isArray(obj(r).upserts) && isArray(obj(r).deletes) && typeof obj(r).hasMore === 'boolean',
        )
      }),
      { numRuns: RUNS },
    )
    await stillServing()
  })

  it('sync:push', async () => {
    await fc.assert(
      fc.asyncProperty(pushArb, async (payload) => {
        const before = await fingerprint()
        const reply = await check('sync:push', payload, (r) => isArray(obj(r).outcomes))
        if (reply.result) {
          const outcomes = obj(reply.result).outcomes as Array<{
            status: string
            error?: { code: ErrorCode }
          }>
          for (const outcome of outcomes) {
            expect(['applied', 'duplicate', 'rejected']).toContain(outcome.status)
            if (outcome.status === 'rejected') expect(CODES.has(outcome.error!.code)).toBe(true)
          }
          if (outcomes.every((o) => o.status === 'rejected')) expect(await fingerprint()).toEqual(before)
        }
      }),
      { numRuns: RUNS },
    )
    await stillServing()
  })

  it('service', async () => {
    await fc.assert(
      fc.asyncProperty(serviceArb, async (payload) => {
        await check('service', payload, (r) => r === null || isArray(r) || typeof r === 'object')
      }),
      { numRuns: RUNS },
    )
    await stillServing()
  })

  it('subscribe', async () => {
    await fc.assert(
      fc.asyncProperty(
        mangled(fc.record({ model: modelArb, where: whereArb }, { requiredKeys: ['model'] })),
        async (payload) => {
          const reply = await check('subscribe', payload, (r) => typeof obj(r).subscriptionId === 'string')
          if (reply.result) await request(alice, 'unsubscribe', reply.result)
        },
      ),
      { numRuns: RUNS / 2 },
    )
    await stillServing()
  })
})
