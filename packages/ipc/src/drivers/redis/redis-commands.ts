/**
 * Each command of `commands.ts` as Redis runs it: the Redis command or Lua script, and the
 * decoding of its reply. Plain commands where one command is the whole operation (INCRBY, HSET,
 * RPUSH, ...), a script for every compound one (locks, move, hgetdel, dump; see `scripts.ts`),
 * MULTI for restore. The mapped type makes the compiler report a command without an entry.
 *
 * Every entry goes through `RedisConnection.run`, whose second argument says whether the
 * command may be sent again after the connection dropped with it in flight (see connection.ts):
 * true only where a second application changes nothing.
 * @internal
 */
import type { CommandArgs, CommandName, CommandResult } from '../../commands.js'
import { IpcError } from '../../errors.js'
import type { IpcEntry, IpcKeyType } from '../../types.js'
import {
  decodeDump,
  decodeHashObject,
  decodeHashPairs,
  decodeList,
  decodeNullable,
  decodeNullableList,
  encode,
  encodeHashArgs,
} from './codec.js'
import type { RedisConnection, ScriptedRedis } from './connection.js'
import type { Keyspace } from './keyspace.js'

/** What every entry works with: one driver instance's connection and key layout. */
export interface RedisTarget {
  readonly connection: RedisConnection
  readonly redis: ScriptedRedis
  readonly keyspace: Keyspace
}

export type RedisCommand<K extends CommandName> = (
  target: RedisTarget,
  args: CommandArgs<K>,
) => Promise<CommandResult<K>>

/** How many keys one SCAN step asks for (keys, dump). */
const SCAN_COUNT = 1000
/** How many restored entries go into one MULTI. */
const RESTORE_BATCH = 500

const ignore = (): undefined => undefined
/**
 * Integer replies arrive as strings (see `stringNumbers` in connection.ts); the ioredis types
 * still say number. `Number()` of a decimal string is exact in the safe-integer range and
 * lands outside it for anything beyond.
 */
const int = (reply: number | string): number => Number(reply)
const isOne = (reply: number | string): boolean => Number(reply) === 1

export const redisCommands: { readonly [K in CommandName]: RedisCommand<K> } = {
  set: ({ connection, redis, keyspace }, [key, value, ttlMs]) => {
    const k = keyspace.key(key)
    const v = encode(value)
    return connection.run(
      () => (ttlMs === null ? redis.set(k, v) : redis.set(k, v, 'PX', ttlMs)),
      true,
      ignore,
    )
  },
  get: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.get(k), true, decodeNullable)
  },
  del: ({ connection, redis, keyspace }, [keys]) => {
    const ks = keys.map((key) => keyspace.key(key))
    return connection.run(() => redis.del(...ks), false, int)
  },
  expire: ({ connection, redis, keyspace }, [key, ttlMs]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.pexpire(k, ttlMs), true, isOne)
  },
  pttl: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.pttl(k), true, int)
  },
  type: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(
      () => redis.type(k),
      true,
      (type) => (type === 'none' ? null : (type as IpcKeyType)),
    )
  },
  keys: scanKeys,

  incrBy: (target, [key, n]) => {
    const k = target.keyspace.key(key)
    return target.connection.run(
      () => target.redis.incrby(k, n),
      false,
      (reply): number | Promise<number> => {
        const value = Number(reply)
        return Number.isSafeInteger(value) ? value : undoOverflow(target, k, n, undefined)
      },
    )
  },

  hset: ({ connection, redis, keyspace }, [key, fields]) => {
    const k = keyspace.key(key)
    const args = encodeHashArgs(fields)
    return connection.run(() => redis.hset(k, ...args), false, int)
  },
  hget: ({ connection, redis, keyspace }, [key, field]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.hget(k, field), true, decodeNullable)
  },
  hgetall: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.hgetall(k), true, decodeHashObject)
  },
  hmget: ({ connection, redis, keyspace }, [key, fields]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.hmget(k, ...fields), true, decodeNullableList)
  },
  hdel: ({ connection, redis, keyspace }, [key, fields]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.hdel(k, ...fields), false, int)
  },
  hincrBy: (target, [key, field, n]) => {
    const k = target.keyspace.key(key)
    return target.connection.run(
      () => target.redis.hincrby(k, field, n),
      false,
      (reply): number | Promise<number> => {
        const value = Number(reply)
        return Number.isSafeInteger(value) ? value : undoOverflow(target, k, n, field)
      },
    )
  },

  rpush: ({ connection, redis, keyspace }, [key, items]) => {
    const k = keyspace.key(key)
    const values = items.map(encode)
    return connection.run(() => redis.rpush(k, ...values), false, int)
  },
  lrange: ({ connection, redis, keyspace }, [key, start, stop]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.lrange(k, start, stop), true, decodeList)
  },
  llen: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.llen(k), true, int)
  },
  ltrim: ({ connection, redis, keyspace }, [key, start, stop]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.ltrim(k, start, stop), false, ignore)
  },

  sadd: ({ connection, redis, keyspace }, [key, members]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.sadd(k, ...members), false, int)
  },
  srem: ({ connection, redis, keyspace }, [key, members]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.srem(k, ...members), false, int)
  },
  smembers: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.smembers(k), true)
  },
  sismember: ({ connection, redis, keyspace }, [key, member]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.sismember(k, member), true, isOne)
  },
  scard: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.scard(k), true, int)
  },

  move: ({ connection, redis, keyspace }, [source, destination]) => {
    const from = keyspace.key(source)
    const to = keyspace.key(destination)
    return connection.run(() => redis.tsMove(from, to), false, isOne)
  },
  hgetdel: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.tsHgetdel(k), false, decodeHashPairs)
  },
  getdel: ({ connection, redis, keyspace }, [key]) => {
    const k = keyspace.key(key)
    return connection.run(() => redis.getdel(k), false, decodeNullable)
  },

  dump: ({ connection, redis, keyspace }, [prefix]) => {
    const pattern = keyspace.scanPattern(prefix)
    return connection.run(
      () => redis.tsDump(pattern, SCAN_COUNT),
      true,
      (reply) => decodeDump(reply, (redisKey) => keyspace.userKey(redisKey), Date.now()),
    )
  },
  restore,

  lock: ({ connection, redis, keyspace }, [key, token, ttlMs]) => {
    const k = keyspace.lock(key)
    return connection.run(() => redis.tsLockAcquire(k, token, ttlMs), true, isOne)
  },
  unlock: ({ connection, redis, keyspace }, [key, token]) => {
    const k = keyspace.lock(key)
    return connection.run(() => redis.tsLockRelease(k, token), false, isOne)
  },
  extendLock: ({ connection, redis, keyspace }, [key, token, ttlMs]) => {
    const k = keyspace.lock(key)
    return connection.run(() => redis.tsLockExtend(k, token, ttlMs), true, isOne)
  },
}

/** SCAN in steps (a key seen twice by SCAN is listed once). */
async function scanKeys({ connection, redis, keyspace }: RedisTarget, [prefix]: CommandArgs<'keys'>) {
  const pattern = keyspace.scanPattern(prefix)
  const found = new Set<string>()
  let cursor = '0'
  do {
    const from = cursor
    const [next, batch] = await connection.run(
      () => redis.scan(from, 'MATCH', pattern, 'COUNT', SCAN_COUNT),
      true,
    )
    for (const redisKey of batch) found.add(keyspace.userKey(redisKey))
    cursor = next
  } while (cursor !== '0')
  return [...found]
}

/**
 * INCRBY/HINCRBY work on 64-bit integers; the API promises safe integers. Why not a Lua
 * script that checks first: it would cost every increment ~20% of throughput for a case
 * that needs a counter near 2^53. Instead an out-of-range result is taken back at once
 * (DECRBY/HINCRBY -n) and reported as `IPC_NOT_INTEGER`; other clients can see the
 * out-of-range value for that one round trip.
 */
async function undoOverflow(
  { connection, redis }: RedisTarget,
  k: string,
  n: number,
  field: string | undefined,
): Promise<never> {
  await connection.run(() => (field === undefined ? redis.decrby(k, n) : redis.hincrby(k, field, -n)), false)
  throw new IpcError('IPC_NOT_INTEGER', `Adding ${n} would leave the safe-integer range`)
}

/**
 * One MULTI per batch: DEL, then the typed write, then PEXPIRE with the time left
 * (relative, so the Redis server's clock does not need to match ours). Empty hashes, lists
 * and sets cannot exist in Redis: their entry leaves the key deleted.
 */
async function restore(target: RedisTarget, [entries]: CommandArgs<'restore'>): Promise<undefined> {
  const now = Date.now()
  const live = entries.filter((entry) => entry.expiresAt === undefined || entry.expiresAt > now)
  for (let i = 0; i < live.length; i += RESTORE_BATCH) {
    const batch = live.slice(i, i + RESTORE_BATCH)
    await target.connection.run(() => restoreBatch(target, batch, now), true)
  }
  return undefined
}

async function restoreBatch({ redis, keyspace }: RedisTarget, batch: IpcEntry[], now: number): Promise<void> {
  const multi = redis.multi()
  for (const entry of batch) {
    const k = keyspace.key(entry.key)
    multi.del(k)
    switch (entry.type) {
      case 'string':
        multi.set(k, encode(entry.value))
        break
      case 'hash': {
        const args = encodeHashArgs(entry.value)
        if (args.length > 0) multi.hset(k, ...args)
        break
      }
      case 'list':
        if (entry.value.length > 0) multi.rpush(k, ...entry.value.map(encode))
        break
      case 'set':
        if (entry.value.length > 0) multi.sadd(k, ...entry.value)
        break
    }
    if (entry.expiresAt !== undefined) multi.pexpire(k, Math.max(1, entry.expiresAt - now))
  }
  const results = await multi.exec()
  for (const [error] of results ?? []) if (error) throw error
}
