import type { Ipc } from '../../types.js'
import {
  AFTER_SHORT_TTL_MS,
  assert,
  assertMissing,
  group,
  rejectsWith,
  SHORT_TTL,
  sleep,
  sorted,
} from './helpers.js'

/** Creates one key of each type under `key(type)`, all expiring after SHORT_TTL. */
async function expiringKeys(ipc: Ipc, key: (name: string) => string): Promise<void> {
  await ipc.set(key('string'), 100, SHORT_TTL)
  await ipc.hset(key('hash'), { old: 1, shared: 'old' })
  await ipc.expire(key('hash'), SHORT_TTL)
  await ipc.rpush(key('list'), 'old1', 'old2')
  await ipc.expire(key('list'), SHORT_TTL)
  await ipc.sadd(key('set'), 'old1', 'old2')
  await ipc.expire(key('set'), SHORT_TTL)
  await sleep(AFTER_SHORT_TTL_MS)
}

export const expiryCases = group('expiry', {
  'a TTL expires keys of every type': async ({ ipc, key }) => {
    await expiringKeys(ipc, key)
    for (const type of ['string', 'hash', 'list', 'set']) await assertMissing(ipc, key(type))
    assert.equal(await ipc.get(key('string')), null)
    assert.deepStrictEqual(await ipc.hgetall(key('hash')), {})
    assert.equal(await ipc.hget(key('hash'), 'old'), null)
    assert.deepStrictEqual(await ipc.lrange(key('list'), 0, -1), [])
    assert.equal(await ipc.llen(key('list')), 0)
    assert.deepStrictEqual(await ipc.smembers(key('set')), [])
    assert.equal(await ipc.scard(key('set')), 0)
    assert.equal(await ipc.sismember(key('set'), 'old1'), false)
    assert.deepStrictEqual(await ipc.keys(key('')), [])
  },

  'every operation on an expired key sees it as missing (incrBy, hset, rpush, sadd, ...)': async ({
    ipc,
    key,
  }) => {
    await expiringKeys(ipc, key)
    assert.equal(await ipc.incrBy(key('string'), 1), 1, 'incrBy starts again at 0')
    assert.equal(await ipc.hset(key('hash'), { shared: 'new', fresh: 2 }), 2, 'both fields are new')
    assert.deepStrictEqual(await ipc.hgetall(key('hash')), { shared: 'new', fresh: 2 })
    assert.equal(await ipc.rpush(key('list'), 'new'), 1)
    assert.deepStrictEqual(await ipc.lrange(key('list'), 0, -1), ['new'])
    assert.equal(await ipc.sadd(key('set'), 'old1', 'new'), 2)
    assert.deepStrictEqual(sorted(await ipc.smembers(key('set'))), ['new', 'old1'])
    for (const type of ['string', 'hash', 'list', 'set']) {
      assert.equal(await ipc.pttl(key(type)), -1, `the recreated ${type} has no TTL`)
    }
  },

  'expired keys are missing for hincrBy, hdel, srem, ltrim, del, expire and take-and-clear': async ({
    ipc,
    key,
  }) => {
    await expiringKeys(ipc, key)
    assert.equal(await ipc.hdel(key('hash'), 'old'), 0)
    assert.equal(await ipc.srem(key('set'), 'old1'), 0)
    await ipc.ltrim(key('list'), 0, 0)
    assert.equal(await ipc.llen(key('list')), 0)
    assert.equal(await ipc.expire(key('string'), 10), false)
    assert.equal(await ipc.del(key('string')), 0)
    assert.equal(await ipc.getdel(key('string')), null)
    assert.deepStrictEqual(await ipc.hgetdel(key('hash')), {})
    assert.equal(await ipc.move(key('list'), key('moved')), false)
    assert.equal(await ipc.hincrBy(key('hash'), 'old', 5), 5)
  },

  'expire on a hash, list and set keeps their content until the TTL': async ({ ipc, key }) => {
    await ipc.hset(key('h'), { a: 1 })
    await ipc.rpush(key('l'), 1)
    await ipc.sadd(key('s'), 'a')
    for (const name of ['h', 'l', 's']) assert.equal(await ipc.expire(key(name), 10), true)
    for (const name of ['h', 'l', 's']) {
      const pttl = await ipc.pttl(key(name))
      assert.ok(pttl > 9000 && pttl <= 10_000, `pttl of ${name}: ${pttl}`)
    }
    assert.deepStrictEqual(await ipc.hgetall(key('h')), { a: 1 })
    assert.equal(await ipc.hset(key('h'), { b: 2 }), 1)
    assert.ok((await ipc.pttl(key('h'))) > 0, 'hset keeps the TTL')
  },
})

export const takeAndClearCases = group('take-and-clear', {
  'move moves any type with its TTL; writes to the source then start fresh': async ({ ipc, key }) => {
    await ipc.hset(key('pending'), { a: 1, b: 2 })
    await ipc.expire(key('pending'), 60)
    assert.equal(await ipc.move(key('pending'), key('flushing')), true)
    await assertMissing(ipc, key('pending'))
    assert.deepStrictEqual(await ipc.hgetall(key('flushing')), { a: 1, b: 2 })
    assert.ok((await ipc.pttl(key('flushing'))) > 0)
    await ipc.hincrBy(key('pending'), 'a', 5)
    assert.deepStrictEqual(await ipc.hgetall(key('pending')), { a: 5 })
    assert.deepStrictEqual(await ipc.hgetall(key('flushing')), { a: 1, b: 2 })
    for (const [name, type, write] of [
      ['s', 'string', () => ipc.set(key('s'), { v: 1 })],
      ['l', 'list', () => ipc.rpush(key('l'), 1, 2)],
      ['z', 'set', () => ipc.sadd(key('z'), 'm')],
    ] as const) {
      await write()
      assert.equal(await ipc.move(key(name), key(`${name}-moved`)), true)
      assert.equal(await ipc.type(key(`${name}-moved`)), type)
      await assertMissing(ipc, key(name))
    }
    assert.deepStrictEqual(await ipc.get(key('s-moved')), { v: 1 })
    assert.deepStrictEqual(await ipc.lrange(key('l-moved'), 0, -1), [1, 2])
    assert.deepStrictEqual(await ipc.smembers(key('z-moved')), ['m'])
  },

  'move returns false and changes nothing when the source is missing or the destination exists': async ({
    ipc,
    key,
  }) => {
    assert.equal(await ipc.move(key('missing'), key('dest')), false)
    await assertMissing(ipc, key('dest'))
    await ipc.set(key('src'), 1)
    await ipc.set(key('dest'), 2)
    assert.equal(await ipc.move(key('src'), key('dest')), false)
    assert.equal(await ipc.get(key('src')), 1)
    assert.equal(await ipc.get(key('dest')), 2)
    assert.equal(await ipc.move(key('src'), key('src')), false)
    assert.equal(await ipc.get(key('src')), 1)
  },

  'hgetdel reads a hash and deletes it in one step': async ({ ipc, key }) => {
    await ipc.hset(key(), { a: 1, b: { c: 2 } })
    assert.deepStrictEqual(await ipc.hgetdel(key()), { a: 1, b: { c: 2 } })
    await assertMissing(ipc, key())
    assert.deepStrictEqual(await ipc.hgetdel(key()), {})
    await ipc.set(key('s'), 1)
    await rejectsWith(() => ipc.hgetdel(key('s')), 'IPC_WRONGTYPE')
    assert.equal(await ipc.get(key('s')), 1)
  },

  'getdel reads a value and deletes it in one step': async ({ ipc, key }) => {
    await ipc.set(key(), { a: [1] })
    assert.deepStrictEqual(await ipc.getdel(key()), { a: [1] })
    await assertMissing(ipc, key())
    assert.equal(await ipc.getdel(key()), null)
    await ipc.hset(key('h'), { a: 1 })
    await rejectsWith(() => ipc.getdel(key('h')), 'IPC_WRONGTYPE')
    assert.deepStrictEqual(await ipc.hgetall(key('h')), { a: 1 })
  },

  'concurrent increments during take-and-clear are never lost': async ({ ipc, other, key }) => {
    let moved = 0
    const writes = Array.from({ length: 200 }, (_, i) =>
      (i % 2 ? ipc : other).hincrBy(key('pending'), 'n', 1),
    )
    for (let round = 0; round < 5; round++) {
      const batch = key(`batch${round}`)
      if (await ipc.move(key('pending'), batch)) moved += Number((await ipc.hgetdel(batch)).n ?? 0)
    }
    await Promise.all(writes)
    moved += Number((await ipc.hgetdel(key('pending'))).n ?? 0)
    assert.equal(moved, 200)
  },
})
