/**
 * The Redis driver on the real server: the shared conformance suite unchanged (its
 * multi-process part with real child processes, each with its own RedisIpc), then what only
 * Redis has: TTLs checked on the server itself, key prefixes, glob characters in prefixes,
 * JSON storage, and outages on a redis-server of our own (the shared one is never stopped).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  freePort,
  hasRedisServerBinary,
  OwnRedisServer,
  redisUrl,
  requireServer,
  uniqueId,
} from '@tidesync/test-env'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { IpcError, IpcUnavailableError } from '../../errors.js'
import { createIpc } from '../../index.js'
import { forkPeer, runIpcContract } from '../../testing/index.js'
import type { Ipc, Json, Logger } from '../../types.js'
import { RedisIpc } from './index.js'
import { escapeGlob } from './keyspace.js'

const hasRedis = await requireServer('redis')
/** Every key of this run (contract, peers, specific tests) lives under it. */
const keyPrefix = `${uniqueId('tidesync-test')}:`
const peerScript = fileURLToPath(new URL('./__tests__/redis-peer.ts', import.meta.url))

/** The Redis key a driver with prefix `prefix` uses for `key`. */
const dataKey = (key: string, prefix = keyPrefix) => `${prefix}k:${key}`
const lockKey = (key: string, prefix = keyPrefix) => `${prefix}lock:${key}`

async function rejection(promise: Promise<unknown>): Promise<IpcError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(IpcError)
    return error as IpcError
  }
  throw new Error('expected a rejection')
}

describe.runIf(hasRedis)('redis driver', () => {
  let raw: Redis
  const opened: Ipc[] = []
  const open = async (
    options: { keyPrefix?: string; url?: string; commandTimeoutMs?: number; logger?: Logger } = {},
  ) => {
    const ipc = await RedisIpc.create({ url: redisUrl, keyPrefix, ...options })
    opened.push(ipc)
    return ipc
  }

  beforeAll(() => {
    raw = new Redis(redisUrl)
  })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((ipc) => ipc.close()))
  })
  afterAll(async () => {
    // Remove every key of this run from the shared Redis.
    let cursor = '0'
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${escapeGlob(keyPrefix)}*`, 'COUNT', 1000)
      if (keys.length > 0) await raw.del(...keys)
      cursor = next
    } while (cursor !== '0')
    await raw.quit()
  })

  runIpcContract('redis', () => createIpc({ driver: 'redis', url: redisUrl, keyPrefix }), {
    spawnPeers: (count) =>
      Promise.all(
        Array.from({ length: count }, () =>
          forkPeer(peerScript, {
            env: { TIDESYNC_TEST_REDIS_URL: redisUrl, TIDESYNC_TEST_KEY_PREFIX: keyPrefix },
          }),
        ),
      ),
  })

  describe('on the Redis server', () => {
    it('sets TTLs for real (PX from fractional seconds), also on expire and locks', async () => {
      const ipc = await open()
      await ipc.set('ttl:a', 1, 30)
      const pttl = await raw.pttl(dataKey('ttl:a'))
      expect(pttl).toBeGreaterThan(29_000)
      expect(pttl).toBeLessThanOrEqual(30_000)

      await ipc.set('ttl:fraction', 1, 0.25)
      const short = await raw.pttl(dataKey('ttl:fraction'))
      expect(short).toBeGreaterThan(0)
      expect(short).toBeLessThanOrEqual(250)

      await ipc.hset('ttl:hash', { a: 1 })
      expect(await raw.pttl(dataKey('ttl:hash'))).toBe(-1)
      expect(await ipc.expire('ttl:hash', 2.5)).toBe(true)
      const hashTtl = await raw.pttl(dataKey('ttl:hash'))
      expect(hashTtl).toBeGreaterThan(2000)
      expect(hashTtl).toBeLessThanOrEqual(2500)

      await ipc.set('ttl:a', 2)
      expect(await raw.pttl(dataKey('ttl:a')), 'set without a TTL clears it').toBe(-1)

      expect(await ipc.lock('ttl:lock', 5)).toBe(true)
      const lockTtl = await raw.pttl(lockKey('ttl:lock'))
      expect(lockTtl).toBeGreaterThan(4000)
      expect(lockTtl).toBeLessThanOrEqual(5000)
      expect(await ipc.extendLock('ttl:lock', 20)).toBe(true)
      expect(await raw.pttl(lockKey('ttl:lock'))).toBeGreaterThan(19_000)
      expect(await ipc.unlock('ttl:lock')).toBe(true)
      expect(await raw.exists(lockKey('ttl:lock'))).toBe(0)
    })

    it('stores values as JSON, so INCRBY takes numbers and refuses JSON strings', async () => {
      const ipc = await open()
      await ipc.set('json:n', 5)
      await ipc.set('json:s', '5')
      expect(await raw.get(dataKey('json:n'))).toBe('5')
      expect(await raw.get(dataKey('json:s'))).toBe('"5"')
      expect(await ipc.incrBy('json:n', 2)).toBe(7)
      expect((await rejection(ipc.incrBy('json:s', 1))).code).toBe('IPC_NOT_INTEGER')
      expect(await raw.get(dataKey('json:s'))).toBe('"5"')

      await ipc.hset('json:h', { a: { b: [1, 'x'] }, n: 1 })
      expect(await raw.hget(dataKey('json:h'), 'a')).toBe('{"b":[1,"x"]}')
      expect(await ipc.hincrBy('json:h', 'n', 4)).toBe(5)
      expect((await rejection(ipc.hincrBy('json:h', 'a', 1))).code).toBe('IPC_NOT_INTEGER')
      await ipc.sadd('json:set', 'plain')
      expect(await raw.smembers(dataKey('json:set'))).toEqual(['plain'])
    })

    it('refuses a result outside the safe-integer range and leaves the counter as it was', async () => {
      const ipc = await open()
      await ipc.set('big', Number.MAX_SAFE_INTEGER - 1)
      expect(await ipc.incrBy('big', 1)).toBe(Number.MAX_SAFE_INTEGER)
      expect((await rejection(ipc.incrBy('big', 1))).code).toBe('IPC_NOT_INTEGER')
      expect(await raw.get(dataKey('big'))).toBe(String(Number.MAX_SAFE_INTEGER))
      await ipc.hset('bigh', { f: -Number.MAX_SAFE_INTEGER })
      expect((await rejection(ipc.hincrBy('bigh', 'f', -1))).code).toBe('IPC_NOT_INTEGER')
      expect(await ipc.hget('bigh', 'f')).toBe(-Number.MAX_SAFE_INTEGER)
    })

    it('maps WRONGTYPE from Redis to IPC_WRONGTYPE and changes nothing', async () => {
      const ipc = await open()
      await ipc.rpush('wrong:list', 1, 2)
      for (const call of [
        ipc.hset('wrong:list', { a: 1 }),
        ipc.hgetall('wrong:list'),
        ipc.incrBy('wrong:list', 1),
        ipc.sadd('wrong:list', 'a'),
        ipc.hgetdel('wrong:list'),
      ]) {
        expect((await rejection(call)).code).toBe('IPC_WRONGTYPE')
      }
      expect(await raw.lrange(dataKey('wrong:list'), 0, -1)).toEqual(['1', '2'])
    })
  })

  describe('key prefixes', () => {
    it('two prefixes do not see each other’s keys, locks or messages', async () => {
      const a = await open({ keyPrefix: `${keyPrefix}A:` })
      const b = await open({ keyPrefix: `${keyPrefix}B:` })
      await a.set('same', 'from a')
      await b.set('same', 'from b')
      expect(await a.get('same')).toBe('from a')
      expect(await b.get('same')).toBe('from b')
      await a.set('only-a', 1)
      expect(await b.get('only-a')).toBeNull()
      expect((await a.keys('')).sort()).toEqual(['only-a', 'same'])
      expect(await b.keys('')).toEqual(['same'])
      expect((await a.dump('')).map((entry) => entry.key).sort()).toEqual(['only-a', 'same'])

      expect(await a.lock('job', 10)).toBe(true)
      expect(await b.lock('job', 10), 'another prefix has its own locks').toBe(true)

      const receivedByB: Json[] = []
      const receivedByA: Json[] = []
      await b.subscribe('news', (message) => receivedByB.push(message))
      await a.subscribe('news', (message) => receivedByA.push(message))
      await a.publish('news', 'for a only')
      await sleep(100)
      expect(receivedByA).toEqual(['for a only'])
      expect(receivedByB).toEqual([])
      expect(await b.del('same', 'only-a')).toBe(1)
      expect(await a.get('same')).toBe('from a')
    })

    it('locks live in their own namespace: not listed, not touched by a key of the same name', async () => {
      const ipc = await open()
      expect(await ipc.lock('ns:x', 10)).toBe(true)
      await ipc.set('ns:x', 'a value')
      await ipc.set('lock:ns:x', 'another value')
      expect((await ipc.keys('ns:')).sort()).toEqual(['ns:x'])
      expect(await ipc.del('ns:x', 'lock:ns:x')).toBe(2)
      expect(await ipc.lock('ns:x', 10), 'deleting values does not free the lock').toBe(false)
      expect(await ipc.unlock('ns:x')).toBe(true)
    })

    it('keys(prefix) and dump(prefix) treat glob characters literally', async () => {
      const ipc = await open()
      const names = ['g*1', 'g?2', 'g[3]', 'g\\4', 'gx', 'g[^a]5', 'g:*:6']
      for (const name of names) await ipc.set(`glob:${name}`, name)
      const keys = async (prefix: string) => (await ipc.keys(`glob:${prefix}`)).sort()
      expect(await keys('g')).toEqual(names.map((name) => `glob:${name}`).sort())
      expect(await keys('g*')).toEqual(['glob:g*1'])
      expect(await keys('g?')).toEqual(['glob:g?2'])
      expect(await keys('g[')).toEqual(['glob:g[3]', 'glob:g[^a]5'])
      expect(await keys('g[3')).toEqual(['glob:g[3]'])
      expect(await keys('g\\')).toEqual(['glob:g\\4'])
      expect(await keys('g:*')).toEqual(['glob:g:*:6'])
      expect(await keys('h')).toEqual([])
      const dumped = await ipc.dump('glob:g[')
      expect(dumped.map((entry) => entry.key).sort()).toEqual(['glob:g[3]', 'glob:g[^a]5'])
    })
  })

  describe('connection', () => {
    it('create() fails fast with IPC_UNAVAILABLE when Redis is unreachable', async () => {
      const port = await freePort()
      const started = Date.now()
      const error = await rejection(createIpc({ driver: 'redis', url: `redis://127.0.0.1:${port}` }))
      expect(Date.now() - started).toBeLessThan(2000)
      expect(error).toBeInstanceOf(IpcUnavailableError)
      expect(error.code).toBe('IPC_UNAVAILABLE')
      expect(error.message).toContain(`127.0.0.1:${port}`)
      expect(error.message).toMatch(/ECONNREFUSED/)
    })

    it('validates its options', async () => {
      for (const options of [
        { url: 'http://127.0.0.1:6379' },
        { keyPrefix: 42 as unknown as string },
        { commandTimeoutMs: 0 },
        { commandTimeoutMs: Number.NaN },
      ]) {
        expect((await rejection(RedisIpc.create({ url: redisUrl, ...options }))).code).toBe(
          'IPC_INVALID_ARGUMENT',
        )
      }
    })

    it('uses the default key prefix tidesync:', async () => {
      const ipc = await RedisIpc.create({ url: redisUrl })
      opened.push(ipc)
      expect(ipc.keyPrefix).toBe('tidesync:')
    })
  })

  describe.runIf(hasRedisServerBinary)('outages (on a redis-server of our own)', () => {
    let server: OwnRedisServer
    let admin: Redis | undefined

    beforeAll(async () => {
      server = await OwnRedisServer.start()
    })
    afterEach(async () => {
      admin?.disconnect()
      admin = undefined
      server.resume()
      if (!server.pid) await server.start()
    })
    afterAll(async () => {
      await server?.stop()
    })

    const openOwn = (commandTimeoutMs: number) => open({ url: server.url, commandTimeoutMs })

    it('a command issued during a short outage succeeds once Redis is back; subscriptions come back', async () => {
      const ipc = await openOwn(5000)
      const received: Json[] = []
      await ipc.subscribe('events', (message) => received.push(message))
      await ipc.set('before', 1)

      await server.kill()
      const started = Date.now()
      const during = ipc.incrBy('during', 1)
      const read = ipc.get('before')
      // Awaited below (a failure there fails the test); no unhandled rejection meanwhile.
      for (const pending of [during, read]) pending.catch(() => {})
      await sleep(600)
      await server.start()

      expect(await during).toBe(1)
      expect(await read, 'the restarted server has no data (--save "")').toBeNull()
      expect(Date.now() - started).toBeLessThan(5000)

      // ioredis subscribes the subscriber connection again after its reconnect.
      const deadline = Date.now() + 5000
      while (received.length === 0 && Date.now() < deadline) {
        await ipc.publish('events', 'after the outage')
        await sleep(50)
      }
      expect(received[0]).toBe('after the outage')
    })

    it('reports a lost connection through the logger; the default one adds its prefix exactly once', async () => {
      const printed: string[] = []
      const warn = vi.spyOn(console, 'warn').mockImplementation((message: unknown) => {
        printed.push(String(message))
      })
      const messages: string[] = []
      const record = (message: string) => {
        messages.push(message)
      }
      try {
        await openOwn(5000) // the default logger
        await open({
          url: server.url,
          commandTimeoutMs: 5000,
          logger: { debug: record, info: record, warn: record, error: record },
        })
        await server.kill()
        const lost = Date.now() + 5000
        while ((printed.length === 0 || messages.length === 0) && Date.now() < lost) await sleep(20)
        await server.start()
        const back = Date.now() + 5000
        while (!messages.some((m) => m.includes('reconnected')) && Date.now() < back) await sleep(20)
      } finally {
        warn.mockRestore()
      }
      expect(printed).toHaveLength(1)
      expect(printed[0]).toMatch(/^\[tidesync\/ipc\] tidesync-ipc: lost the connection to Redis at /)
      expect(printed[0]!.split('[tidesync/ipc]')).toHaveLength(2)
      expect(messages[0]).toMatch(/^tidesync-ipc: lost the connection to Redis at /)
      expect(messages[1]).toMatch(/^tidesync-ipc: reconnected to Redis at /)
      for (const message of messages) expect(message).not.toContain('[tidesync')
    })

    it('a longer outage fails with IPC_UNAVAILABLE within the bound; the driver recovers by itself', async () => {
      const ipc = await openOwn(800)
      await ipc.set('x', 1)
      await server.kill()
      const started = Date.now()
      const error = await rejection(ipc.incrBy('x', 1))
      const waited = Date.now() - started
      expect(error).toBeInstanceOf(IpcUnavailableError)
      expect(error.code).toBe('IPC_UNAVAILABLE')
      expect((error as IpcUnavailableError).outcomeUnknown).toBe(false)
      expect(error.message).toMatch(/unavailable.*800 ms.*not applied/)
      expect(waited).toBeGreaterThanOrEqual(700)
      expect(waited).toBeLessThan(3000)

      await server.start()
      const deadline = Date.now() + 5000
      let value: number | undefined
      while (value === undefined && Date.now() < deadline) {
        value = await ipc.incrBy('x', 1).catch(() => undefined)
      }
      expect(value, 'the same instance works again after the outage').toBe(1)
    })

    it('a write in flight when the connection drops fails with outcomeUnknown; a read in flight is retried', async () => {
      const ipc = await openOwn(5000)
      await ipc.set('r', 'kept?')
      admin = new Redis(server.url)
      admin.on('error', () => {})
      // DEBUG SLEEP freezes the server, so the next commands are written but not answered.
      admin.call('DEBUG', 'SLEEP', '2').catch(() => {})
      await sleep(100)
      // Handlers attached now: the write fails while server.kill() is still being awaited.
      const write = rejection(ipc.incrBy('w', 1))
      const read = ipc.get('r')
      read.catch(() => {}) // awaited below; a failure there fails the test
      await sleep(150)
      await server.kill()
      const error = await write
      expect(error).toBeInstanceOf(IpcUnavailableError)
      expect((error as IpcUnavailableError).outcomeUnknown).toBe(true)
      expect(error.message).toMatch(/in flight: it may or may not have been applied/)
      await server.start()
      expect(await read, 'the read was sent again to the restarted (empty) server').toBeNull()
    })

    it('a Redis that stops answering fails commands within the bound instead of hanging', async () => {
      const ipc = await openOwn(600)
      await ipc.set('p', 1)
      server.pause()
      const started = Date.now()
      const [readError, writeError] = await Promise.all([
        rejection(ipc.get('p')),
        rejection(ipc.incrBy('q', 1)),
      ])
      expect(Date.now() - started).toBeLessThan(2500)
      expect(readError.code).toBe('IPC_UNAVAILABLE')
      expect(writeError.code).toBe('IPC_UNAVAILABLE')
      expect((writeError as IpcUnavailableError).outcomeUnknown).toBe(true)
      server.resume()
      const deadline = Date.now() + 5000
      let value: Json | undefined
      while (value === undefined && Date.now() < deadline) value = await ipc.get('p').catch(() => undefined)
      expect(value).toBe(1)
    })

    it('close() quits both connections', async () => {
      const ipc = await openOwn(2000)
      await ipc.subscribe('c', () => {})
      admin = new Redis(server.url)
      admin.on('error', () => {})
      const names = async () =>
        ((await admin!.client('LIST')) as string)
          .split('\n')
          .map((line) => /name=(\S*)/.exec(line)?.[1])
          .filter((name) => name?.startsWith('tidesync'))
          .sort()
      expect(await names()).toEqual(['tidesync-ipc', 'tidesync-ipc-sub'])
      await ipc.close()
      const deadline = Date.now() + 2000
      while ((await names()).length > 0 && Date.now() < deadline) await sleep(20)
      expect(await names()).toEqual([])
      expect((await rejection(ipc.get('x'))).code).toBe('IPC_CLOSED')
    })
  })
})
