/**
 * The shared half of every driver (in the spirit of socket.io's `cluster-adapter.ts`).
 *
 * How a driver extends it: subclass `BaseIpc`, set `driver`, and implement
 * - `exec(name, args)`: run one command of `commands.ts` atomically on the store and return its
 *   result (a value or a promise). Arguments arrive checked and in command form (TTLs in whole
 *   ms). Store-level failures (`IPC_WRONGTYPE`, `IPC_NOT_INTEGER`, `IPC_UNAVAILABLE`) are
 *   thrown or rejected as an `IpcError`.
 * - `doSubscribe(channel)` when the first local handler of a channel arrives (resolve once the
 *   subscription is live), `doUnsubscribe(channel)` when the last one leaves, and
 *   `doPublish(channel, payload)` with the message already JSON text. Incoming messages go to
 *   `this.deliver(channel, payload)`, asynchronously with respect to `publish`.
 * - `doClose()`: release timers, connections, listeners (new calls are refused already).
 *
 * The base does everything that must behave the same on every driver: the closed check
 * (`IPC_CLOSED`), argument checks from the command table, `decrBy` as `incrBy`, lock owner
 * tokens and `withLock` (`owned-locks.ts`), and local pub/sub fan-out (`local-subscriptions.ts`).
 * Why the public methods are written out rather than generated from the table: each one is a
 * typed line that editors and the `.d.ts` show as is, and a few differ (variadic arguments,
 * `decrBy`, empty `del`/`restore`, locks).
 */
import {
  type CallerArgs,
  type CommandArgs,
  type CommandName,
  type CommandResult,
  prepareCommand,
} from './commands.js'
import { IpcError } from './errors.js'
import { type Awaitable, LocalSubscriptions } from './local-subscriptions.js'
import { defaultLogger } from './logger.js'
import { OwnedLocks } from './owned-locks.js'
import type {
  Ipc,
  IpcEntry,
  IpcKeyType,
  Json,
  Logger,
  MessageHandler,
  Unsubscribe,
  WithLockOptions,
} from './types.js'
import {
  describeValue,
  invalidArgument,
  toTtlMs,
  validateChannel,
  validateKey,
  validateValue,
} from './validate.js'

export type { Awaitable }

export interface BaseIpcOptions {
  /** @default warnings and errors to the console, prefixed `[tidesync/ipc]` */
  logger?: Logger
}

export abstract class BaseIpc implements Ipc {
  abstract readonly driver: Ipc['driver']
  protected readonly logger: Logger
  private closed = false
  /** Owner tokens of the locks this instance holds. */
  private readonly locks: OwnedLocks
  /** This instance's pub/sub handlers. */
  private readonly subscriptions: LocalSubscriptions

  constructor(options: BaseIpcOptions = {}) {
    this.logger = options.logger ?? defaultLogger
    this.subscriptions = new LocalSubscriptions(
      {
        subscribe: (channel) => this.doSubscribe(channel),
        unsubscribe: (channel) => this.doUnsubscribe(channel),
        isOpen: () => !this.closed,
      },
      this.logger,
    )
    this.locks = new OwnedLocks(
      {
        lock: (key, token, ttlMs) => this.exec('lock', [key, token, ttlMs]),
        unlock: (key, token) => this.exec('unlock', [key, token]),
        extend: (key, token, ttlMs) => this.exec('extendLock', [key, token, ttlMs]),
        isOpen: () => !this.closed,
        assertOpen: () => this.assertOpen(),
      },
      this.logger,
    )
  }

  // ---- what subclasses implement (see the note at the top of the file) ---------------------
  protected abstract exec<K extends CommandName>(name: K, args: CommandArgs<K>): Awaitable<CommandResult<K>>
  protected abstract doSubscribe(channel: string): Awaitable<void>
  protected abstract doUnsubscribe(channel: string): Awaitable<void>
  protected abstract doPublish(channel: string, payload: string): Awaitable<void>
  protected abstract doClose(): Awaitable<void>

  // ---- shared helpers for subclasses -------------------------------------------------------

  /** True once `close()` was called. */
  protected get isClosed(): boolean {
    return this.closed
  }

  /** Throws `IPC_CLOSED` after `close()`. */
  protected assertOpen(): void {
    if (this.closed) throw new IpcError('IPC_CLOSED', `This ${this.driver} IPC instance is closed`)
  }

  /** True when at least one local handler listens on `channel`. */
  protected hasSubscribers(channel: string): boolean {
    return this.subscriptions.has(channel)
  }

  /** The channels with local handlers (e.g. to resubscribe after a reconnect). */
  protected subscribedChannels(): string[] {
    return this.subscriptions.list()
  }

  /**
   * Hands an incoming message (JSON text) to every local handler of `channel`, each exactly once
   * and each with its own parsed copy. A handler that throws (or rejects) is logged.
   */
  protected deliver(channel: string, payload: string): void {
    this.subscriptions.deliver(channel, payload)
  }

  // ---- commands: every public method below goes through these two --------------------------

  /** The closed check and the table's argument checks; returns the command form. */
  private prepare<K extends CommandName>(name: K, args: CallerArgs<K>): CommandArgs<K> {
    this.assertOpen()
    return prepareCommand(name, args)
  }

  private run<K extends CommandName>(name: K, args: CallerArgs<K>): Awaitable<CommandResult<K>> {
    return this.exec(name, this.prepare(name, args))
  }

  // Each method is `async`, so a bad argument rejects (never throws synchronously).

  async set(key: string, value: Json, ttlSeconds?: number): Promise<void> {
    return this.run('set', [key, value, ttlSeconds])
  }
  async get<T extends Json = Json>(key: string): Promise<T | null> {
    return this.run('get', [key]) as Awaitable<T | null>
  }
  async del(...keys: string[]): Promise<number> {
    const args = this.prepare('del', [keys])
    return keys.length === 0 ? 0 : this.exec('del', args)
  }
  async expire(key: string, ttlSeconds: number): Promise<boolean> {
    return this.run('expire', [key, ttlSeconds])
  }
  async pttl(key: string): Promise<number> {
    return this.run('pttl', [key])
  }
  async type(key: string): Promise<IpcKeyType | null> {
    return this.run('type', [key])
  }
  async keys(prefix: string): Promise<string[]> {
    return this.run('keys', [prefix])
  }

  async incrBy(key: string, n: number): Promise<number> {
    return this.run('incrBy', [key, n])
  }
  async decrBy(key: string, n: number): Promise<number> {
    const [k, delta] = this.prepare('incrBy', [key, n])
    return this.exec('incrBy', [k, delta === 0 ? 0 : -delta])
  }

  async hset(key: string, fields: Record<string, Json>): Promise<number> {
    return this.run('hset', [key, fields])
  }
  async hget<T extends Json = Json>(key: string, field: string): Promise<T | null> {
    return this.run('hget', [key, field]) as Awaitable<T | null>
  }
  async hgetall(key: string): Promise<Record<string, Json>> {
    return this.run('hgetall', [key])
  }
  async hmget<T extends Json = Json>(key: string, ...fields: string[]): Promise<Array<T | null>> {
    return this.run('hmget', [key, fields]) as Awaitable<Array<T | null>>
  }
  async hdel(key: string, ...fields: string[]): Promise<number> {
    return this.run('hdel', [key, fields])
  }
  async hincrBy(key: string, field: string, n: number): Promise<number> {
    return this.run('hincrBy', [key, field, n])
  }

  async rpush(key: string, ...items: Json[]): Promise<number> {
    return this.run('rpush', [key, items])
  }
  async lrange<T extends Json = Json>(key: string, start: number, stop: number): Promise<T[]> {
    return this.run('lrange', [key, start, stop]) as Awaitable<T[]>
  }
  async llen(key: string): Promise<number> {
    return this.run('llen', [key])
  }
  async ltrim(key: string, start: number, stop: number): Promise<void> {
    return this.run('ltrim', [key, start, stop])
  }

  async sadd(key: string, ...members: string[]): Promise<number> {
    return this.run('sadd', [key, members])
  }
  async srem(key: string, ...members: string[]): Promise<number> {
    return this.run('srem', [key, members])
  }
  async smembers(key: string): Promise<string[]> {
    return this.run('smembers', [key])
  }
  async sismember(key: string, member: string): Promise<boolean> {
    return this.run('sismember', [key, member])
  }
  async scard(key: string): Promise<number> {
    return this.run('scard', [key])
  }

  async move(source: string, destination: string): Promise<boolean> {
    return this.run('move', [source, destination])
  }
  async hgetdel(key: string): Promise<Record<string, Json>> {
    return this.run('hgetdel', [key])
  }
  async getdel<T extends Json = Json>(key: string): Promise<T | null> {
    return this.run('getdel', [key]) as Awaitable<T | null>
  }

  async dump(prefix: string): Promise<IpcEntry[]> {
    return this.run('dump', [prefix])
  }
  async restore(entries: IpcEntry[]): Promise<void> {
    const args = this.prepare('restore', [entries])
    if (entries.length > 0) return this.exec('restore', args)
  }

  // ---- locks: the store commands take an owner token, which `OwnedLocks` keeps -------------

  async lock(key: string, ttlSeconds: number): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    return (await this.locks.acquire(key, toTtlMs(ttlSeconds))) !== null
  }

  async unlock(key: string): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    return this.locks.unlock(key)
  }

  async extendLock(key: string, ttlSeconds: number): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    return this.locks.extend(key, toTtlMs(ttlSeconds))
  }

  async withLock<T>(
    key: string,
    ttlSeconds: number,
    fn: () => Promise<T> | T,
    options: WithLockOptions = {},
  ): Promise<T> {
    this.assertOpen()
    validateKey(key)
    const ttlMs = toTtlMs(ttlSeconds)
    if (typeof fn !== 'function') throw invalidArgument(`fn must be a function, got ${describeValue(fn)}`)
    return this.locks.withLock(key, ttlMs, fn, options ?? {})
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  async subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    this.assertOpen()
    validateChannel(channel)
    if (typeof handler !== 'function') {
      throw invalidArgument(`handler must be a function, got ${describeValue(handler)}`)
    }
    return this.subscriptions.add(channel, handler)
  }

  async publish(channel: string, message: Json): Promise<void> {
    this.assertOpen()
    validateChannel(channel)
    validateValue(message, 'message')
    return this.doPublish(channel, JSON.stringify(message))
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Idempotent: later operations fail with `IPC_CLOSED`; held locks are left to their TTL. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.subscriptions.deactivateAll()
    this.locks.clear()
    try {
      // `subscribedChannels()` still lists the channels here, for drivers to detach them.
      await this.doClose()
    } finally {
      this.subscriptions.clear()
    }
  }
}
