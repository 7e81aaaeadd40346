import type { Json } from '../../types.js'
import { AFTER_SHORT_TTL_MS, assert, assertMissing, group, SHORT_TTL, sleep, sorted } from './helpers.js'

const NESTED: Json = {
  id: 42,
  name: 'Zoë 🌊 "quoted" \\ back\nslash',
  negative: -7.25,
  zero: 0,
  tiny: 1e-7,
  big: 9007199254740991,
  flags: [true, false, null],
  empty: {},
  emptyList: [],
  nested: { deeper: [{ a: [1, [2, [3, { b: 'c' }]]] }] },
  'key with spaces:and:colons': 'ok',
}

export const stringCases = group('strings', {
  'a missing key reads null': async ({ ipc, key }) => {
    assert.equal(await ipc.get(key('missing')), null)
  },

  'set/get round-trips every JSON type exactly': async ({ ipc, key }) => {
    const values: Json[] = [
      NESTED,
      'text',
      '',
      0,
      -1.5,
      123456789,
      true,
      false,
      null,
      [],
      {},
      [1, 'two', { three: 3 }],
    ]
    for (const [i, value] of values.entries()) {
      await ipc.set(key(`v${i}`), value)
      assert.deepStrictEqual(await ipc.get(key(`v${i}`)), value, `value #${i}`)
    }
  },

  'a string that looks like a number stays a string': async ({ ipc, key }) => {
    await ipc.set(key(), '10')
    assert.strictEqual(await ipc.get(key()), '10')
    await ipc.set(key('n'), 10)
    assert.strictEqual(await ipc.get(key('n')), 10)
  },

  'an own __proto__ key inside a value round-trips as data': async ({ ipc, key }) => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Json
    await ipc.set(key(), value)
    const read = (await ipc.get(key())) as Record<string, Json>
    assert.equal(Object.getPrototypeOf(read), Object.prototype)
    assert.deepStrictEqual(Object.keys(read), ['__proto__', 'a'])
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(read, '__proto__')?.value, { polluted: true })
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  },

  'stored values cannot be changed through the caller’s objects': async ({ ipc, key }) => {
    const value = { list: [1, 2], inner: { a: 1 } }
    await ipc.set(key(), value)
    value.list.push(3)
    value.inner.a = 99
    const read = (await ipc.get(key())) as { list: number[]; inner: { a: number } }
    assert.deepStrictEqual(read, { list: [1, 2], inner: { a: 1 } })
    read.list.push(4)
    assert.deepStrictEqual(await ipc.get(key()), { list: [1, 2], inner: { a: 1 } })
  },

  'set replaces a key of any type': async ({ ipc, key }) => {
    await ipc.hset(key(), { a: 1 })
    await ipc.set(key(), 'now a string')
    assert.equal(await ipc.type(key()), 'string')
    assert.equal(await ipc.get(key()), 'now a string')
  },

  'a TTL expires the key (fractional seconds)': async ({ ipc, key }) => {
    await ipc.set(key(), 'soon gone', SHORT_TTL)
    const pttl = await ipc.pttl(key())
    assert.ok(pttl > 0 && pttl <= SHORT_TTL * 1000, `pttl ${pttl}`)
    assert.equal(await ipc.get(key()), 'soon gone')
    await sleep(AFTER_SHORT_TTL_MS)
    assert.equal(await ipc.get(key()), null)
    await assertMissing(ipc, key())
  },

  'set without a TTL clears a previous TTL': async ({ ipc, key }) => {
    await ipc.set(key(), 1, SHORT_TTL)
    await ipc.set(key(), 2)
    assert.equal(await ipc.pttl(key()), -1)
    await sleep(AFTER_SHORT_TTL_MS)
    assert.equal(await ipc.get(key()), 2)
  },

  'del returns how many keys existed, of any type': async ({ ipc, key }) => {
    await ipc.set(key('s'), 1)
    await ipc.hset(key('h'), { a: 1 })
    await ipc.rpush(key('l'), 1)
    await ipc.sadd(key('z'), 'm')
    assert.equal(await ipc.del(key('s'), key('h'), key('l'), key('z'), key('missing')), 4)
    assert.equal(await ipc.del(key('s')), 0)
    for (const name of ['s', 'h', 'l', 'z']) await assertMissing(ipc, key(name))
  },

  'expire sets a TTL on an existing key, false on a missing one': async ({ ipc, key }) => {
    assert.equal(await ipc.expire(key('missing'), 10), false)
    await ipc.set(key(), 'v')
    assert.equal(await ipc.pttl(key()), -1)
    assert.equal(await ipc.expire(key(), SHORT_TTL), true)
    assert.ok((await ipc.pttl(key())) > 0)
    await sleep(AFTER_SHORT_TTL_MS)
    await assertMissing(ipc, key())
  },

  'pttl is -2 for a missing key and -1 without a TTL': async ({ ipc, key }) => {
    assert.equal(await ipc.pttl(key('missing')), -2)
    await ipc.set(key(), 'v')
    assert.equal(await ipc.pttl(key()), -1)
    await ipc.set(key('t'), 'v', 10)
    const pttl = await ipc.pttl(key('t'))
    assert.ok(pttl > 9000 && pttl <= 10_000, `pttl ${pttl}`)
  },

  'type names what a key holds': async ({ ipc, key }) => {
    assert.equal(await ipc.type(key('none')), null)
    await ipc.set(key('s'), { an: 'object' })
    await ipc.hset(key('h'), { a: 1 })
    await ipc.rpush(key('l'), 1)
    await ipc.sadd(key('z'), 'm')
    assert.equal(await ipc.type(key('s')), 'string')
    assert.equal(await ipc.type(key('h')), 'hash')
    assert.equal(await ipc.type(key('l')), 'list')
    assert.equal(await ipc.type(key('z')), 'set')
  },

  'keys may contain any characters, ":" and unicode included': async ({ ipc, key }) => {
    const names = ['a:b:c', ':', 'ключ🔑', 'sp ace', 'new\nline', 'glob*?[x]{y}', '\\back', '"quote"', '%s']
    for (const [i, name] of names.entries()) await ipc.set(key(name), i)
    for (const [i, name] of names.entries()) assert.equal(await ipc.get(key(name)), i, name)
    assert.deepStrictEqual(sorted(await ipc.keys(key(''))), sorted(names.map((name) => key(name))))
  },

  'keys(prefix) lists live keys of every type by literal prefix': async ({ ipc, key }) => {
    const prefix = key('p*?')
    await ipc.set(`${prefix}:s`, 1)
    await ipc.hset(`${prefix}:h`, { a: 1 })
    await ipc.rpush(`${prefix}:l`, 1)
    await ipc.sadd(`${prefix}:z`, 'm')
    await ipc.set(`${prefix}:gone`, 1, SHORT_TTL)
    await ipc.set(key('pab-other'), 1) // matches the prefix as a glob pattern, not literally
    await ipc.lock(`${prefix}:lock`, 10)
    await sleep(AFTER_SHORT_TTL_MS)
    assert.deepStrictEqual(
      sorted(await ipc.keys(prefix)),
      sorted(['s', 'h', 'l', 'z'].map((s) => `${prefix}:${s}`)),
    )
    assert.deepStrictEqual(await ipc.keys(key('nothing-here')), [])
    await ipc.unlock(`${prefix}:lock`)
  },
})
