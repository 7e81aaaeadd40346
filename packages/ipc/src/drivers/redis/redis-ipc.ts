import { BaseIpc } from '../../base-ipc.js'
import { IpcError } from '../../errors.js'
import type { IpcEntry, IpcKeyType, Json, RedisIpcOptions } from '../../types.js'
import { invalidArgument } from '../../validate.js'
import {
  decodeDump,
  decodeHashObject,
  decodeHashPairs,
  decodeList,
  decodeNullable,
  encode,
  encodeHashArgs,
} from './codec.js'
import { RedisConnection, type ScriptedRedis } from './connection.js'
import { Keyspace } from './keyspace.js'

/** `RedisIpc.create` options: those of `createIpc({ driver: 'redis' })`, `driver` optional. */
export type RedisIpcCreateOptions = Omit<RedisIpcOptions, 'driver'> & { driver?: 'redis' }

/** How many keys one SCAN step asks for (keys, dump). */
const SCAN_COUNT = 1000
/** How many restored entries go into one MULTI. */
const RESTORE_BATCH = 500

const ignore = (): void => {}
/**
 * Integer replies arrive as strings (see `stringNumbers` in connection.ts); the ioredis types
 * still say number. `Number()` of a decimal string is exact in the safe-integer range and
 * lands outside it for anything beyond.
 */
const int = (reply: number | string): number => Number(reply)
const isOne = (reply: number | string): boolean => Number(reply) === 1

/**
 * The `redis` driver: the IPC API on one Redis server through ioredis.
 *
 * - Commands go through one connection with auto-pipelining (commands issued in the same
 *   event-loop turn share one write); subscriptions through a second connection opened on
 *   the first `subscribe`, with each message fanned out locally to every handler once.
 * - Plain Redis commands where one command is the whole operation (INCRBY, HSET, RPUSH, ...),
 *   Lua scripts for every compound one (locks, move, hgetdel, dump; see `scripts.ts`), MULTI
 *   for restore.
 * - Keys, locks and channels live under `keyPrefix` (see `keyspace.ts`); values are JSON text
 *   (see `codec.ts`).
 * - During an outage commands wait up to `commandTimeoutMs`, then fail with
 *   `IpcUnavailableError` (see `connection.ts`).
 *
 * @example
 * const ipc = await RedisIpc.create({ url: 'redis://127.0.0.1:6379', keyPrefix: 'myapp:' })
 * await ipc.set('greeting', { text: 'hello' }, 60)
 * await ipc.close()
 */
export class RedisIpc extends BaseIpc {
  readonly driver = 'redis' as const
  /** The key prefix in use (`tidesync:` unless set). */
  readonly keyPrefix: string
  private readonly keyspace: Keyspace
  private readonly connection: RedisConnection
  private readonly redis: ScriptedRedis
  private readonly url: string
  private readonly commandTimeoutMs: number
  private subscriber: RedisConnection | undefined

  /**
   * Connects to Redis and returns the driver. Rejects with `IpcUnavailableError` at once when
   * Redis cannot be reached (one attempt, bounded by `commandTimeoutMs`): a wrong URL is
   * reported at start-up instead of retried forever.
   */
  static async create(options: RedisIpcCreateOptions = {}): Promise<RedisIpc> {
    const ipc = new RedisIpc(options)
    await ipc.connection.connect(true)
    return ipc
  }

  private constructor(options: RedisIpcCreateOptions) {
    super(options)
    const url = options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
    const keyPrefix = options.keyPrefix ?? 'tidesync:'
    const commandTimeoutMs = options.commandTimeoutMs ?? 5000
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw invalidArgument(`url must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
    }
    if (typeof keyPrefix !== 'string') throw invalidArgument('keyPrefix must be a string')
    if (!(Number.isFinite(commandTimeoutMs) && commandTimeoutMs > 0)) {
      throw invalidArgument('commandTimeoutMs must be a positive number of milliseconds')
    }
    this.url = url
    this.keyPrefix = keyPrefix
    this.commandTimeoutMs = commandTimeoutMs
    this.keyspace = new Keyspace(keyPrefix)
    this.connection = new RedisConnection({
      url,
      name: 'tidesync-ipc',
      commandTimeoutMs,
      autoPipelining: true,
      stringNumbers: true,
      logger: this.logger,
    })
    this.redis = this.connection.client
  }

  // ---- strings -----------------------------------------------------------------------------

  protected async doSet(key: string, value: Json, ttlMs: number | undefined): Promise<void> {
    const k = this.keyspace.key(key)
    const v = encode(value)
    await this.connection.run(
      () => (ttlMs === undefined ? this.redis.set(k, v) : this.redis.set(k, v, 'PX', ttlMs)),
      true,
    )
  }

  protected doGet(key: string): Promise<Json | null> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.get(k), true, decodeNullable)
  }

  protected doDel(keys: string[]): Promise<number> {
    const ks = keys.map((key) => this.keyspace.key(key))
    return this.connection.run(() => this.redis.del(...ks), false, int)
  }

  protected async doExpire(key: string, ttlMs: number): Promise<boolean> {
    const k = this.keyspace.key(key)
    return isOne(await this.connection.run(() => this.redis.pexpire(k, ttlMs), true))
  }

  protected doPttl(key: string): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.pttl(k), true, int)
  }

  protected async doType(key: string): Promise<IpcKeyType | null> {
    const k = this.keyspace.key(key)
    const type = await this.connection.run(() => this.redis.type(k), true)
    return type === 'none' ? null : (type as IpcKeyType)
  }

  protected async doKeys(prefix: string): Promise<string[]> {
    const pattern = this.keyspace.scanPattern(prefix)
    const found = new Set<string>()
    let cursor = '0'
    do {
      const from = cursor
      const [next, batch] = await this.connection.run(
        () => this.redis.scan(from, 'MATCH', pattern, 'COUNT', SCAN_COUNT),
        true,
      )
      for (const redisKey of batch) found.add(this.keyspace.userKey(redisKey))
      cursor = next
    } while (cursor !== '0')
    return [...found]
  }

  // ---- counters ----------------------------------------------------------------------------

  protected doIncrBy(key: string, n: number): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(
      () => this.redis.incrby(k, n),
      false,
      (reply): number | Promise<number> => {
        const value = Number(reply)
        return Number.isSafeInteger(value) ? value : this.undoOverflow(k, n, undefined)
      },
    )
  }

  /**
   * INCRBY/HINCRBY work on 64-bit integers; the API promises safe integers. Why not a Lua
   * script that checks first: it would cost every increment ~20% of throughput for a case
   * that needs a counter near 2^53. Instead an out-of-range result is taken back at once
   * (DECRBY/HINCRBY -n) and reported as `IPC_NOT_INTEGER`; other clients can see the
   * out-of-range value for that one round trip.
   */
  private async undoOverflow(k: string, n: number, field: string | undefined): Promise<never> {
    await this.connection.run(
      () => (field === undefined ? this.redis.decrby(k, n) : this.redis.hincrby(k, field, -n)),
      false,
    )
    throw new IpcError('IPC_NOT_INTEGER', `Adding ${n} would leave the safe-integer range`)
  }

  // ---- hashes ------------------------------------------------------------------------------

  protected doHset(key: string, fields: Record<string, Json>): Promise<number> {
    const k = this.keyspace.key(key)
    const args = encodeHashArgs(fields)
    return this.connection.run(() => this.redis.hset(k, ...args), false, int)
  }

  protected doHget(key: string, field: string): Promise<Json | null> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.hget(k, field), true, decodeNullable)
  }

  protected doHgetall(key: string): Promise<Record<string, Json>> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.hgetall(k), true, decodeHashObject)
  }

  protected doHdel(key: string, fields: string[]): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.hdel(k, ...fields), false, int)
  }

  protected doHincrBy(key: string, field: string, n: number): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(
      () => this.redis.hincrby(k, field, n),
      false,
      (reply): number | Promise<number> => {
        const value = Number(reply)
        return Number.isSafeInteger(value) ? value : this.undoOverflow(k, n, field)
      },
    )
  }

  // ---- lists -------------------------------------------------------------------------------

  protected doRpush(key: string, items: Json[]): Promise<number> {
    const k = this.keyspace.key(key)
    const values = items.map(encode)
    return this.connection.run(() => this.redis.rpush(k, ...values), false, int)
  }

  protected doLrange(key: string, start: number, stop: number): Promise<Json[]> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.lrange(k, start, stop), true, decodeList)
  }

  protected doLlen(key: string): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.llen(k), true, int)
  }

  protected async doLtrim(key: string, start: number, stop: number): Promise<void> {
    const k = this.keyspace.key(key)
    await this.connection.run(() => this.redis.ltrim(k, start, stop), false)
  }

  // ---- sets --------------------------------------------------------------------------------

  protected doSadd(key: string, members: string[]): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.sadd(k, ...members), false, int)
  }

  protected doSrem(key: string, members: string[]): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.srem(k, ...members), false, int)
  }

  protected doSmembers(key: string): Promise<string[]> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.smembers(k), true)
  }

  protected async doSismember(key: string, member: string): Promise<boolean> {
    const k = this.keyspace.key(key)
    return isOne(await this.connection.run(() => this.redis.sismember(k, member), true))
  }

  protected doScard(key: string): Promise<number> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.scard(k), true, int)
  }

  // ---- take-and-clear ----------------------------------------------------------------------

  protected async doMove(source: string, destination: string): Promise<boolean> {
    const from = this.keyspace.key(source)
    const to = this.keyspace.key(destination)
    return isOne(await this.connection.run(() => this.redis.tsMove(from, to), false))
  }

  protected doHgetdel(key: string): Promise<Record<string, Json>> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.tsHgetdel(k), false, decodeHashPairs)
  }

  protected doGetdel(key: string): Promise<Json | null> {
    const k = this.keyspace.key(key)
    return this.connection.run(() => this.redis.getdel(k), false, decodeNullable)
  }

  // ---- checkpoints -------------------------------------------------------------------------

  protected async doDump(prefix: string): Promise<IpcEntry[]> {
    const pattern = this.keyspace.scanPattern(prefix)
    const reply = await this.connection.run(() => this.redis.tsDump(pattern, SCAN_COUNT), true)
    return decodeDump(reply, (redisKey) => this.keyspace.userKey(redisKey), Date.now())
  }

  /**
   * One MULTI per batch: DEL, then the typed write, then PEXPIRE with the time left
   * (relative, so the Redis server's clock does not need to match ours). Empty hashes, lists
   * and sets cannot exist in Redis: their entry leaves the key deleted.
   */
  protected async doRestore(entries: IpcEntry[]): Promise<void> {
    const now = Date.now()
    const live = entries.filter((entry) => entry.expiresAt === undefined || entry.expiresAt > now)
    for (let i = 0; i < live.length; i += RESTORE_BATCH) {
      const batch = live.slice(i, i + RESTORE_BATCH)
      await this.connection.run(() => this.restoreBatch(batch, now), true)
    }
  }

  private async restoreBatch(batch: IpcEntry[], now: number): Promise<void> {
    const multi = this.redis.multi()
    for (const entry of batch) {
      const k = this.keyspace.key(entry.key)
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

  // ---- locks -------------------------------------------------------------------------------

  protected async doLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const k = this.keyspace.lock(key)
    return isOne(await this.connection.run(() => this.redis.tsLockAcquire(k, token, ttlMs), true))
  }

  protected async doUnlock(key: string, token: string): Promise<boolean> {
    const k = this.keyspace.lock(key)
    return isOne(await this.connection.run(() => this.redis.tsLockRelease(k, token), false))
  }

  protected async doExtendLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const k = this.keyspace.lock(key)
    return isOne(await this.connection.run(() => this.redis.tsLockExtend(k, token, ttlMs), true))
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  protected async doSubscribe(channel: string): Promise<void> {
    const subscriber = this.subscriberConnection()
    const c = this.keyspace.channel(channel)
    await subscriber.run(() => subscriber.client.subscribe(c), true)
  }

  protected async doUnsubscribe(channel: string): Promise<void> {
    const subscriber = this.subscriber
    if (!subscriber) return
    const c = this.keyspace.channel(channel)
    await subscriber.run(() => subscriber.client.unsubscribe(c), true)
  }

  protected doPublish(channel: string, payload: string): Promise<void> {
    const c = this.keyspace.channel(channel)
    return this.connection.run(() => this.redis.publish(c, payload), false, ignore)
  }

  /**
   * The subscriber connection, created on the first subscribe. It connects on its first
   * SUBSCRIBE (which waits for it within `commandTimeoutMs`) and ioredis subscribes it again
   * to every channel after a reconnect. Messages published while it is down are lost, as with
   * any Redis pub/sub client.
   */
  private subscriberConnection(): RedisConnection {
    if (this.subscriber) return this.subscriber
    const subscriber = new RedisConnection({
      url: this.url,
      name: 'tidesync-ipc-sub',
      commandTimeoutMs: this.commandTimeoutMs,
      autoPipelining: false,
      stringNumbers: false,
      logger: this.logger,
    })
    subscriber.client.on('message', (redisChannel: string, payload: string) => {
      const channel = this.keyspace.channelName(redisChannel)
      if (channel !== null) this.deliver(channel, payload)
    })
    this.subscriber = subscriber
    return subscriber
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  protected async doClose(): Promise<void> {
    await Promise.all([this.connection.close(), this.subscriber?.close()])
  }
}
