import type { Ipc } from '../../types.js'
import { assert, assertMissing, group, rejectsWith } from './helpers.js'

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

function cyclicObject(): unknown {
  const value: Record<string, unknown> = { a: 1 }
  value.self = value
  return value
}

function cyclicArray(): unknown {
  const value: unknown[] = [1]
  value.push({ back: value })
  return value
}

function sparseArray(): unknown {
  const value = new Array<number>(3)
  value[0] = 1
  value[2] = 3
  return value
}

/** Values that are not JSON data which round-trips exactly, each with what the message must name. */
const NOT_JSON: [label: string, make: () => unknown, path: RegExp][] = [
  ['undefined', () => undefined, /^value is undefined/],
  ['a function', () => () => 1, /function/],
  ['a symbol', () => Symbol('s'), /symbol/],
  ['a BigInt', () => 10n, /BigInt/],
  ['NaN', () => Number.NaN, /NaN/],
  ['Infinity', () => Number.POSITIVE_INFINITY, /Infinity/],
  ['-Infinity', () => Number.NEGATIVE_INFINITY, /Infinity/],
  ['a Date', () => new Date(0), /Date/],
  ['a Map', () => new Map([['a', 1]]), /Map/],
  ['a Set', () => new Set([1]), /Set/],
  ['a class instance', () => new Point(1, 2), /Point/],
  ['a cyclic object', cyclicObject, /value\.self is a cyclic reference/],
  ['a cyclic array', cyclicArray, /value\[1\]\.back is a cyclic reference/],
  ['a nested function', () => ({ a: [0, 1, () => 2] }), /value\.a\[2\] is a function/],
  ['a nested undefined', () => ({ a: { b: undefined } }), /value\.a\.b is undefined/],
  ['a nested BigInt', () => [{ n: 1n }], /value\[0\]\.n is a BigInt/],
  ['a nested NaN', () => ({ 'odd key': Number.NaN }), /value\["odd key"\] is NaN/],
  ['a sparse array', sparseArray, /value\[1\] is undefined/],
  ['a symbol key', () => ({ [Symbol('k')]: 1 }), /symbol/],
]

const BAD_KEYS: unknown[] = ['', 1, null, undefined, {}, ['k'], Symbol('k')]

/** One call of every method with `badKey`, each expected to fail with IPC_INVALID_KEY. */
function callsWithKey(ipc: Ipc, badKey: string): (() => Promise<unknown>)[] {
  return [
    () => ipc.set(badKey, 1),
    () => ipc.get(badKey),
    () => ipc.del('fine', badKey),
    () => ipc.expire(badKey, 1),
    () => ipc.pttl(badKey),
    () => ipc.type(badKey),
    () => ipc.incrBy(badKey, 1),
    () => ipc.decrBy(badKey, 1),
    () => ipc.hset(badKey, { a: 1 }),
    () => ipc.hget(badKey, 'a'),
    () => ipc.hgetall(badKey),
    () => ipc.hdel(badKey, 'a'),
    () => ipc.hincrBy(badKey, 'a', 1),
    () => ipc.rpush(badKey, 1),
    () => ipc.lrange(badKey, 0, -1),
    () => ipc.llen(badKey),
    () => ipc.ltrim(badKey, 0, 1),
    () => ipc.sadd(badKey, 'a'),
    () => ipc.srem(badKey, 'a'),
    () => ipc.smembers(badKey),
    () => ipc.sismember(badKey, 'a'),
    () => ipc.scard(badKey),
    () => ipc.move(badKey, 'fine'),
    () => ipc.move('fine', badKey),
    () => ipc.hgetdel(badKey),
    () => ipc.getdel(badKey),
    () => ipc.lock(badKey, 1),
    () => ipc.unlock(badKey),
    () => ipc.extendLock(badKey, 1),
    () => ipc.withLock(badKey, 1, () => 1),
  ]
}

export const validationCases = group('bad input', {
  'values that are not JSON-serialisable are refused with a path, and nothing is stored': async ({
    ipc,
    key,
  }) => {
    for (const [i, [label, make, path]] of NOT_JSON.entries()) {
      const k = key(`v${i}`)
      await rejectsWith(() => ipc.set(k, make() as never), 'IPC_INVALID_VALUE', path).catch(
        (error: Error) => {
          throw new Error(`${label}: ${error.message}`)
        },
      )
      await assertMissing(ipc, k)
      await rejectsWith(() => ipc.rpush(k, make() as never), 'IPC_INVALID_VALUE')
      await rejectsWith(() => ipc.hset(k, { f: make() } as never), 'IPC_INVALID_VALUE')
      await assertMissing(ipc, k)
    }
  },

  'a refused value leaves the previous value in place': async ({ ipc, key }) => {
    await ipc.set(key(), { old: true })
    await rejectsWith(() => ipc.set(key(), cyclicObject() as never), 'IPC_INVALID_VALUE')
    await rejectsWith(() => ipc.set(key(), { ok: 1, bad: () => 1 } as never), 'IPC_INVALID_VALUE')
    assert.deepStrictEqual(await ipc.get(key()), { old: true })
  },

  'keys that are not non-empty strings are refused by every method': async ({ ipc, key }) => {
    await ipc.set(key('fine'), 'kept')
    for (const badKey of BAD_KEYS) {
      for (const [i, call] of callsWithKey(ipc, badKey as string).entries()) {
        await rejectsWith(call, 'IPC_INVALID_KEY').catch((error: Error) => {
          throw new Error(`call #${i} with key ${String(badKey)}: ${error.message}`)
        })
      }
    }
    assert.equal(await ipc.get(key('fine')), 'kept')
    assert.deepStrictEqual(await ipc.keys(key('')), [key('fine')])
  },

  'del with one bad key deletes none': async ({ ipc, key }) => {
    await ipc.set(key('a'), 1)
    await rejectsWith(() => ipc.del(key('a'), ''), 'IPC_INVALID_KEY')
    assert.equal(await ipc.get(key('a')), 1)
  },

  'TTLs must be positive finite seconds; a bad TTL stores nothing': async ({ ipc, key }) => {
    for (const ttl of [0, -1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null]) {
      await rejectsWith(() => ipc.set(key(), 'v', ttl as number), 'IPC_INVALID_ARGUMENT')
      await assertMissing(ipc, key())
    }
    await ipc.set(key('e'), 'v')
    for (const ttl of [0, -1, Number.NaN]) {
      await rejectsWith(() => ipc.expire(key('e'), ttl), 'IPC_INVALID_ARGUMENT')
    }
    assert.equal(await ipc.pttl(key('e')), -1)
  },

  'keys/dump need a string prefix; restore needs well-formed entries': async ({ ipc, key }) => {
    await rejectsWith(() => ipc.keys(1 as never), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.dump(null as never), 'IPC_INVALID_ARGUMENT')
    const bad: unknown[] = [
      null,
      [{ key: key(), type: 'zset', value: [] }],
      [{ key: '', type: 'string', value: 1 }],
      [{ key: key(), type: 'string', value: () => 1 }],
      [{ key: key(), type: 'set', value: [1] }],
      [{ key: key(), type: 'hash', value: [] }],
      [{ key: key(), type: 'list', value: 'x' }],
      [{ key: key(), type: 'string', value: 1, expiresAt: 'soon' }],
      [
        { key: key('first'), type: 'string', value: 1 },
        { key: key(), type: 'string', value: 10n },
      ],
    ]
    for (const entries of bad) {
      await assert.rejects(ipc.restore(entries as never), (error: unknown) => {
        const code = (error as { code?: string }).code
        return code === 'IPC_INVALID_ARGUMENT' || code === 'IPC_INVALID_VALUE' || code === 'IPC_INVALID_KEY'
      })
    }
    await assertMissing(ipc, key())
    await assertMissing(ipc, key('first'))
  },
})
