import type { Json } from '../../types.js'
import { assert, assertMissing, group, rejectsWith } from './helpers.js'

export const hashCases = group('hashes', {
  'a missing hash reads {} and missing fields read null': async ({ ipc, key }) => {
    assert.deepStrictEqual(await ipc.hgetall(key()), {})
    assert.equal(await ipc.hget(key(), 'f'), null)
    await ipc.hset(key('h'), { a: 1 })
    assert.equal(await ipc.hget(key('h'), 'nope'), null)
  },

  'hmget reads several fields in their order, null for missing ones and for a missing hash': async ({
    ipc,
    key,
  }) => {
    assert.deepStrictEqual(await ipc.hmget(key(), 'a', 'b'), [null, null])
    await ipc.hset(key(), { a: 1, b: { n: [2] }, nil: null })
    assert.deepStrictEqual(await ipc.hmget(key(), 'b', 'missing', 'a', 'a', 'nil'), [
      { n: [2] },
      null,
      1,
      1,
      null,
    ])
    assert.deepStrictEqual(await ipc.hmget(key(), '__proto__'), [null])
    await ipc.hset(key(), JSON.parse('{"__proto__": "own"}') as Record<string, Json>)
    assert.deepStrictEqual(await ipc.hmget(key(), '__proto__', 'toString'), ['own', null])
  },

  'hmget needs at least one string field and fails on another type with IPC_WRONGTYPE': async ({
    ipc,
    key,
  }) => {
    await ipc.hset(key(), { a: 1 })
    await rejectsWith(() => ipc.hmget(key()), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.hmget(key(), 'a', 2 as never), 'IPC_INVALID_ARGUMENT')
    await ipc.rpush(key('list'), 'x')
    await rejectsWith(() => ipc.hmget(key('list'), 'a'), 'IPC_WRONGTYPE')
    assert.deepStrictEqual(await ipc.hgetall(key()), { a: 1 })
  },

  'hset merges fields and returns how many were new': async ({ ipc, key }) => {
    assert.equal(await ipc.hset(key(), { a: 1, b: 'two' }), 2)
    assert.equal(await ipc.hset(key(), { b: 'deux', c: [3] }), 1)
    assert.equal(await ipc.hset(key(), { a: 10 }), 0)
    assert.deepStrictEqual(await ipc.hgetall(key()), { a: 10, b: 'deux', c: [3] })
    assert.equal(await ipc.hget(key(), 'b'), 'deux')
  },

  'field values round-trip as JSON (nested, null, false, 0, "")': async ({ ipc, key }) => {
    const fields: Record<string, Json> = {
      nested: { x: [1, { y: null }] },
      nil: null,
      no: false,
      zero: 0,
      empty: '',
      'field:with:colons': 'ok',
      'ünï 🌊': 'ok',
    }
    await ipc.hset(key(), fields)
    assert.deepStrictEqual(await ipc.hgetall(key()), fields)
    assert.strictEqual(await ipc.hget(key(), 'nil'), null)
    assert.strictEqual(await ipc.hget(key(), 'zero'), 0)
    assert.deepStrictEqual(await ipc.hget(key(), 'nested'), { x: [1, { y: null }] })
  },

  'a field named __proto__ is stored as an ordinary field': async ({ ipc, key }) => {
    const fields = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 2, "a": 3}') as Record<
      string,
      Json
    >
    assert.equal(await ipc.hset(key(), fields), 3)
    const all = await ipc.hgetall(key())
    assert.equal(Object.getPrototypeOf(all), Object.prototype)
    assert.deepStrictEqual(Object.keys(all).sort(), ['__proto__', 'a', 'constructor'])
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(all, '__proto__')?.value, { polluted: 1 })
    assert.deepStrictEqual(await ipc.hget(key(), '__proto__'), { polluted: 1 })
    assert.equal(await ipc.hget(key(), 'toString'), null)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  },

  'hdel returns how many fields existed; the last one removes the key': async ({ ipc, key }) => {
    await ipc.hset(key(), { a: 1, b: 2, c: 3 })
    assert.equal(await ipc.hdel(key(), 'a', 'missing'), 1)
    assert.equal(await ipc.hdel(key('nokey'), 'a'), 0)
    assert.deepStrictEqual(await ipc.hgetall(key()), { b: 2, c: 3 })
    assert.equal(await ipc.hdel(key(), 'b', 'c'), 2)
    await assertMissing(ipc, key())
  },

  'hset refuses fields that are not a non-empty plain object, storing nothing': async ({ ipc, key }) => {
    const bad: unknown[] = [null, [], ['a', 1], 'a', 1, new Map([['a', 1]]), new Date(), {}]
    for (const fields of bad) {
      await rejectsWith(() => ipc.hset(key(), fields as Record<string, Json>), 'IPC_INVALID_ARGUMENT')
    }
    await assertMissing(ipc, key())
  },

  'hset refuses a bad field value, naming it, and stores no field': async ({ ipc, key }) => {
    await ipc.hset(key(), { keep: 1 })
    const error = await rejectsWith(
      () => ipc.hset(key(), { fine: 2, bad: { deep: [1, () => {}] } } as never),
      'IPC_INVALID_VALUE',
      /bad.*deep.*\[1\]/,
    )
    assert.match(error.message, /function/)
    await rejectsWith(() => ipc.hset(key(), { n: 10n } as never), 'IPC_INVALID_VALUE')
    await rejectsWith(() => ipc.hset(key(), { u: undefined } as never), 'IPC_INVALID_VALUE')
    assert.deepStrictEqual(await ipc.hgetall(key()), { keep: 1 })
  },

  'hash operations on a list key fail with IPC_WRONGTYPE and change nothing': async ({ ipc, key }) => {
    await ipc.rpush(key(), 'a', 'b')
    await rejectsWith(() => ipc.hset(key(), { a: 1 }), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.hget(key(), 'a'), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.hgetall(key()), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.hdel(key(), 'a'), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.hincrBy(key(), 'a', 1), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.hgetdel(key()), 'IPC_WRONGTYPE')
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), ['a', 'b'])
    await ipc.set(key('s'), 'string')
    await rejectsWith(() => ipc.hgetall(key('s')), 'IPC_WRONGTYPE')
    await ipc.hset(key('h'), { a: 1 })
    await rejectsWith(() => ipc.get(key('h')), 'IPC_WRONGTYPE')
  },

  'hget/hdel/hincrBy refuse non-string field names': async ({ ipc, key }) => {
    await ipc.hset(key(), { a: 1 })
    await rejectsWith(() => ipc.hget(key(), 1 as never), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.hdel(key(), null as never), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.hdel(key()), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.hincrBy(key(), {} as never, 1), 'IPC_INVALID_ARGUMENT')
    assert.deepStrictEqual(await ipc.hgetall(key()), { a: 1 })
  },
})
