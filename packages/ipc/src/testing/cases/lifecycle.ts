import type { IpcEntry } from '../../types.js'
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

const byKey = (a: IpcEntry, b: IpcEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

export const checkpointCases = group('checkpoints', {
  'dump returns every live key under a prefix, with types, values and expiry': async ({ ipc, key }) => {
    const before = Date.now()
    await ipc.set(key('s'), { nested: [1, 'two'] })
    await ipc.set(key('ttl'), 'expiring', 60)
    await ipc.hset(key('h'), { a: 1, b: { c: null } })
    await ipc.rpush(key('l'), 'x', 2)
    await ipc.sadd(key('z'), 'm1', 'm2')
    await ipc.set(key('gone'), 1, SHORT_TTL)
    await ipc.set(`${key('').slice(0, -1)}-outside`, 'not under the prefix')
    await sleep(AFTER_SHORT_TTL_MS)
    const entries = (await ipc.dump(key(''))).sort(byKey)
    const ttl = entries.find((entry) => entry.key === key('ttl'))
    assert.ok(ttl?.expiresAt !== undefined, 'the TTL is dumped as expiresAt')
    assert.ok(
      ttl.expiresAt >= before + 59_000 && ttl.expiresAt <= Date.now() + 60_000,
      `expiresAt ${ttl.expiresAt}`,
    )
    const withoutTtl = entries.map(({ expiresAt: _, ...entry }) => entry)
    const set = withoutTtl.find((entry) => entry.type === 'set')
    if (set) set.value = sorted(set.value as string[])
    assert.deepStrictEqual(
      withoutTtl,
      [
        { key: key('h'), type: 'hash', value: { a: 1, b: { c: null } } },
        { key: key('l'), type: 'list', value: ['x', 2] },
        { key: key('s'), type: 'string', value: { nested: [1, 'two'] } },
        { key: key('ttl'), type: 'string', value: 'expiring' },
        { key: key('z'), type: 'set', value: ['m1', 'm2'] },
      ].sort((a, b) => (a.key < b.key ? -1 : 1)),
    )
    assert.equal(
      entries.filter((entry) => entry.expiresAt !== undefined).length,
      1,
      'only the key with a TTL has expiresAt',
    )
  },

  'restore writes entries back, replacing what keys hold, and skips expired ones': async ({ ipc, key }) => {
    await ipc.set(key('h'), 'will be replaced by a hash')
    await ipc.restore([
      { key: key('s'), type: 'string', value: { a: [1] } },
      { key: key('h'), type: 'hash', value: JSON.parse('{"__proto__": 1, "n": 2}') },
      { key: key('l'), type: 'list', value: [1, 'two', null] },
      { key: key('z'), type: 'set', value: ['a', 'b'] },
      { key: key('ttl'), type: 'string', value: 'later', expiresAt: Date.now() + 60_000 },
      { key: key('expired'), type: 'string', value: 'old', expiresAt: Date.now() - 1 },
    ])
    assert.deepStrictEqual(await ipc.get(key('s')), { a: [1] })
    assert.deepStrictEqual(await ipc.hgetall(key('h')), JSON.parse('{"__proto__": 1, "n": 2}'))
    assert.deepStrictEqual(await ipc.lrange(key('l'), 0, -1), [1, 'two', null])
    assert.deepStrictEqual(sorted(await ipc.smembers(key('z'))), ['a', 'b'])
    const pttl = await ipc.pttl(key('ttl'))
    assert.ok(pttl > 55_000 && pttl <= 60_000, `pttl ${pttl}`)
    await assertMissing(ipc, key('expired'))
    assert.equal(await ipc.pttl(key('s')), -1)
  },

  'dump then restore reproduces the state': async ({ ipc, key }) => {
    await ipc.hset(key('pending:1'), { views: 3, 'a:b': 'c' })
    await ipc.rpush(key('pending:inserts'), { row: 1 }, { row: 2 })
    await ipc.incrBy(key('pending:count'), 7)
    const snapshot = await ipc.dump(key('pending:'))
    await ipc.del(...snapshot.map((entry) => entry.key))
    assert.deepStrictEqual(await ipc.keys(key('pending:')), [])
    await ipc.restore(snapshot)
    assert.deepStrictEqual((await ipc.dump(key('pending:'))).sort(byKey), [...snapshot].sort(byKey))
  },
})

export const lifecycleCases = group('lifecycle', {
  'the driver name is one of memory, cluster, redis': async ({ ipc }) => {
    assert.ok(['memory', 'cluster', 'redis'].includes(ipc.driver), ipc.driver)
  },

  'a closed instance refuses every call with IPC_CLOSED; others keep working': async ({
    ipc,
    makeIpc,
    key,
  }) => {
    const closing = await makeIpc()
    await closing.set(key(), 'written before close')
    const unsubscribe = await closing.subscribe(key('chan'), () => {})
    await closing.close()
    await closing.close() // idempotent
    const calls: (() => Promise<unknown>)[] = [
      () => closing.set(key(), 1),
      () => closing.get(key()),
      () => closing.del(key()),
      () => closing.incrBy(key('n'), 1),
      () => closing.hset(key('h'), { a: 1 }),
      () => closing.hgetall(key('h')),
      () => closing.rpush(key('l'), 1),
      () => closing.sadd(key('z'), 'a'),
      () => closing.move(key(), key('m')),
      () => closing.dump(key('')),
      () => closing.lock(key('lock'), 1),
      () => closing.withLock(key('lock'), 1, () => 1),
      () => closing.publish(key('chan'), 1),
      () => closing.subscribe(key('chan'), () => {}),
    ]
    for (const call of calls) await rejectsWith(call, 'IPC_CLOSED')
    await unsubscribe() // harmless after close
    assert.equal(await ipc.get(key()), 'written before close')
    assert.equal(await ipc.incrBy(key('n'), 1), 1)
  },
})
