import { assert, assertMissing, group, rejectsWith, sorted } from './helpers.js'

export const listCases = group('lists', {
  'rpush returns the new length; lrange 0 -1 reads everything in order': async ({ ipc, key }) => {
    assert.equal(await ipc.rpush(key(), 'a'), 1)
    assert.equal(await ipc.rpush(key(), 'b', { c: [1] }, null, 4), 5)
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), ['a', 'b', { c: [1] }, null, 4])
    assert.equal(await ipc.llen(key()), 5)
  },

  'a missing list reads [] and has length 0': async ({ ipc, key }) => {
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), [])
    assert.equal(await ipc.llen(key()), 0)
  },

  'lrange follows Redis index rules (negative, out of range, crossed)': async ({ ipc, key }) => {
    await ipc.rpush(key(), 0, 1, 2, 3, 4)
    const cases: [number, number, number[]][] = [
      [0, 0, [0]],
      [1, 3, [1, 2, 3]],
      [-2, -1, [3, 4]],
      [-3, 3, [2, 3]],
      [0, -1, [0, 1, 2, 3, 4]],
      [-100, 1, [0, 1]],
      [2, 100, [2, 3, 4]],
      [5, 10, []],
      [3, 1, []],
      [-1, -2, []],
      [0, -6, []],
      [-100, -100, []],
    ]
    for (const [start, stop, expected] of cases) {
      assert.deepStrictEqual(await ipc.lrange(key(), start, stop), expected, `lrange ${start} ${stop}`)
    }
  },

  'ltrim keeps start..stop as Redis does; an empty result removes the key': async ({ ipc, key }) => {
    await ipc.rpush(key(), 0, 1, 2, 3, 4)
    await ipc.ltrim(key(), 1, -2)
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), [1, 2, 3])
    await ipc.ltrim(key(), -2, 100)
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), [2, 3])
    await ipc.ltrim(key(), 5, 10)
    await assertMissing(ipc, key())
    await ipc.ltrim(key('missing'), 0, 1)
    await assertMissing(ipc, key('missing'))
  },

  'list items are copies': async ({ ipc, key }) => {
    const item = { n: [1] }
    await ipc.rpush(key(), item)
    item.n.push(2)
    const [read] = await ipc.lrange<{ n: number[] }>(key(), 0, 0)
    read!.n.push(3)
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), [{ n: [1] }])
  },

  'rpush refuses bad items (storing none) and an empty call': async ({ ipc, key }) => {
    await rejectsWith(() => ipc.rpush(key(), 1, (() => 2) as never, 3), 'IPC_INVALID_VALUE', /items\[1\]/)
    await rejectsWith(() => ipc.rpush(key(), 1, Number.NaN), 'IPC_INVALID_VALUE')
    await rejectsWith(() => ipc.rpush(key()), 'IPC_INVALID_ARGUMENT')
    await assertMissing(ipc, key())
  },

  'lrange/ltrim refuse indexes that are not integers': async ({ ipc, key }) => {
    await ipc.rpush(key(), 1, 2)
    for (const bad of [1.5, Number.NaN, '0', Number.POSITIVE_INFINITY]) {
      await rejectsWith(() => ipc.lrange(key(), bad as number, -1), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.ltrim(key(), 0, bad as number), 'IPC_INVALID_ARGUMENT')
    }
    assert.deepStrictEqual(await ipc.lrange(key(), 0, -1), [1, 2])
  },

  'list operations on a hash fail with IPC_WRONGTYPE': async ({ ipc, key }) => {
    await ipc.hset(key(), { a: 1 })
    await rejectsWith(() => ipc.rpush(key(), 1), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.lrange(key(), 0, -1), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.llen(key()), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.ltrim(key(), 0, 1), 'IPC_WRONGTYPE')
    assert.deepStrictEqual(await ipc.hgetall(key()), { a: 1 })
  },
})

export const setCases = group('sets', {
  'sadd/srem return how many members changed': async ({ ipc, key }) => {
    assert.equal(await ipc.sadd(key(), 'a', 'b', 'a'), 2)
    assert.equal(await ipc.sadd(key(), 'b', 'c'), 1)
    assert.equal(await ipc.srem(key(), 'a', 'zzz'), 1)
    assert.equal(await ipc.srem(key('missing'), 'a'), 0)
    assert.deepStrictEqual(sorted(await ipc.smembers(key())), ['b', 'c'])
    assert.equal(await ipc.scard(key()), 2)
    assert.equal(await ipc.sismember(key(), 'b'), true)
    assert.equal(await ipc.sismember(key(), 'a'), false)
  },

  'a missing set reads [] / 0 / false; removing the last member removes the key': async ({ ipc, key }) => {
    assert.deepStrictEqual(await ipc.smembers(key()), [])
    assert.equal(await ipc.scard(key()), 0)
    assert.equal(await ipc.sismember(key(), 'x'), false)
    await ipc.sadd(key(), 'x')
    assert.equal(await ipc.srem(key(), 'x'), 1)
    await assertMissing(ipc, key())
  },

  'members are any strings, unicode and "" included': async ({ ipc, key }) => {
    const members = ['', 'a:b', 'ünï 🌊', ' ', '1', 'null']
    assert.equal(await ipc.sadd(key(), ...members), members.length)
    assert.deepStrictEqual(sorted(await ipc.smembers(key())), sorted(members))
    for (const member of members) assert.equal(await ipc.sismember(key(), member), true)
  },

  'a large set keeps exact counts': async ({ ipc, key }) => {
    const members = Array.from({ length: 5000 }, (_, i) => `m${i}`)
    assert.equal(await ipc.sadd(key(), ...members), 5000)
    assert.equal(await ipc.sadd(key(), ...members.slice(0, 100), 'new'), 1)
    assert.equal(await ipc.scard(key()), 5001)
    assert.equal(await ipc.srem(key(), ...members.slice(0, 2500)), 2500)
    assert.equal(await ipc.scard(key()), 2501)
  },

  'sadd/srem/sismember refuse non-string members and store nothing': async ({ ipc, key }) => {
    for (const bad of [1, null, undefined, { a: 1 }, ['a']]) {
      await rejectsWith(() => ipc.sadd(key(), 'ok', bad as unknown as string), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.srem(key(), bad as unknown as string), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.sismember(key(), bad as unknown as string), 'IPC_INVALID_ARGUMENT')
    }
    await rejectsWith(() => ipc.sadd(key()), 'IPC_INVALID_ARGUMENT')
    await assertMissing(ipc, key())
  },

  'set operations on a string fail with IPC_WRONGTYPE': async ({ ipc, key }) => {
    await ipc.set(key(), 'v')
    await rejectsWith(() => ipc.sadd(key(), 'a'), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.srem(key(), 'a'), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.smembers(key()), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.sismember(key(), 'a'), 'IPC_WRONGTYPE')
    await rejectsWith(() => ipc.scard(key()), 'IPC_WRONGTYPE')
    assert.equal(await ipc.get(key()), 'v')
  },
})
