import type { Json } from '../../types.js'
import { assert, assertMissing, group, rejectsWith } from './helpers.js'

const BAD_DELTAS: unknown[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1.5,
  '1',
  null,
  2 ** 53,
  {},
]

export const counterCases = group('counters', {
  'incrBy starts a missing key at 0 and returns the new value': async ({ ipc, key }) => {
    assert.equal(await ipc.incrBy(key(), 5), 5)
    assert.equal(await ipc.incrBy(key(), -2), 3)
    assert.equal(await ipc.incrBy(key(), 0), 3)
    assert.equal(await ipc.decrBy(key(), 10), -7)
    assert.equal(await ipc.decrBy(key('fresh'), 4), -4)
    assert.strictEqual(await ipc.get(key()), -7)
  },

  'incrBy works on a number stored with set, and keeps the TTL': async ({ ipc, key }) => {
    await ipc.set(key(), 10, 60)
    assert.equal(await ipc.incrBy(key(), 5), 15)
    assert.strictEqual(await ipc.get(key()), 15)
    assert.ok((await ipc.pttl(key())) > 0, 'the TTL survives incrBy')
  },

  'concurrent incrBy calls are atomic': async ({ ipc, other, key }) => {
    await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? ipc : other).incrBy(key(), 1)))
    assert.equal(await ipc.get(key()), 400)
  },

  'incrBy on a non-numeric value fails with IPC_NOT_INTEGER and changes nothing': async ({ ipc, key }) => {
    const values: Json[] = ['abc', '10', 1.5, true, { a: 1 }, [1]]
    for (const [i, value] of values.entries()) {
      await ipc.set(key(`v${i}`), value)
      await rejectsWith(() => ipc.incrBy(key(`v${i}`), 1), 'IPC_NOT_INTEGER')
      assert.deepStrictEqual(await ipc.get(key(`v${i}`)), value)
    }
  },

  'incrBy on a hash, list or set fails with IPC_WRONGTYPE': async ({ ipc, key }) => {
    await ipc.hset(key('h'), { a: 1 })
    await ipc.rpush(key('l'), 1)
    await ipc.sadd(key('z'), 'm')
    for (const name of ['h', 'l', 'z']) {
      await rejectsWith(() => ipc.incrBy(key(name), 1), 'IPC_WRONGTYPE')
      await rejectsWith(() => ipc.decrBy(key(name), 1), 'IPC_WRONGTYPE')
    }
    assert.deepStrictEqual(await ipc.hgetall(key('h')), { a: 1 })
  },

  'a result outside the safe-integer range fails with IPC_NOT_INTEGER': async ({ ipc, key }) => {
    await ipc.incrBy(key(), Number.MAX_SAFE_INTEGER)
    await rejectsWith(() => ipc.incrBy(key(), 1), 'IPC_NOT_INTEGER')
    assert.equal(await ipc.get(key()), Number.MAX_SAFE_INTEGER)
    await ipc.set(key('low'), Number.MIN_SAFE_INTEGER)
    await rejectsWith(() => ipc.decrBy(key('low'), 1), 'IPC_NOT_INTEGER')
    await ipc.hincrBy(key('h'), 'f', Number.MAX_SAFE_INTEGER)
    await rejectsWith(() => ipc.hincrBy(key('h'), 'f', 1), 'IPC_NOT_INTEGER')
    assert.equal(await ipc.hget(key('h'), 'f'), Number.MAX_SAFE_INTEGER)
  },

  'incrBy/decrBy/hincrBy refuse deltas that are not safe integers and store nothing': async ({
    ipc,
    key,
  }) => {
    for (const n of BAD_DELTAS) {
      await rejectsWith(() => ipc.incrBy(key(), n as number), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.decrBy(key(), n as number), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.hincrBy(key('h'), 'f', n as number), 'IPC_INVALID_ARGUMENT')
    }
    await assertMissing(ipc, key())
    await assertMissing(ipc, key('h'))
    await ipc.set(key('five'), 5)
    await rejectsWith(() => ipc.incrBy(key('five'), 0.5), 'IPC_INVALID_ARGUMENT')
    assert.equal(await ipc.get(key('five')), 5)
  },

  'hincrBy starts a missing field at 0 and keeps the other fields': async ({ ipc, key }) => {
    assert.equal(await ipc.hincrBy(key(), 'views', 3), 3)
    await ipc.hset(key(), { title: 'x' })
    assert.equal(await ipc.hincrBy(key(), 'views', -1), 2)
    assert.equal(await ipc.hincrBy(key(), 'likes', 1), 1)
    assert.deepStrictEqual(await ipc.hgetall(key()), { views: 2, title: 'x', likes: 1 })
  },

  'hincrBy on a non-integer field or a non-hash key fails': async ({ ipc, key }) => {
    await ipc.hset(key(), { text: 'abc', float: 1.5 })
    await rejectsWith(() => ipc.hincrBy(key(), 'text', 1), 'IPC_NOT_INTEGER')
    await rejectsWith(() => ipc.hincrBy(key(), 'float', 1), 'IPC_NOT_INTEGER')
    assert.deepStrictEqual(await ipc.hgetall(key()), { text: 'abc', float: 1.5 })
    await ipc.set(key('s'), 1)
    await rejectsWith(() => ipc.hincrBy(key('s'), 'f', 1), 'IPC_WRONGTYPE')
    assert.equal(await ipc.get(key('s')), 1)
  },
})
