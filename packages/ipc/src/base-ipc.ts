/**
 * The shared half of every driver (in the spirit of socket.io's `cluster-adapter.ts`).
 *
 * How a driver extends it: subclass `BaseIpc`, set `driver`, and implement the protected
 * `do*` primitives listed under "What subclasses must implement" below. The base class does
 * everything that must behave identically on every driver before a primitive is called:
 * the closed check (`IPC_CLOSED`), argument validation (`validate.ts`: keys, JSON values,
 * TTLs converted to whole milliseconds, safe-integer deltas, ...), `decrBy` via `doIncrBy`,
 * lock owner tokens (a random token per successful `lock`, kept per key so only this instance's
 * holder can unlock/extend), `withLock` (retry until `waitMs`, auto-extend every ttl/3, always
 * release), and local pub/sub fan-out (one driver-level subscription per channel, however many
 * handlers; `deliver()` hands a message to each handler exactly once). So a primitive receives
 * arguments that are already valid and only has to apply them atomically to its store; it
 * reports store-level failures (`IPC_WRONGTYPE`, `IPC_NOT_INTEGER`, `IPC_UNAVAILABLE`) by
 * throwing/rejecting with an `IpcError`. Primitives may return a value or a promise.
 *
 * What subclasses must implement (all arguments validated; TTLs are positive integer ms):
 * - strings: `doSet(key, value, ttlMs?)` (replaces any type; no ttl clears the TTL),
 *   `doGet`, `doDel(keys)` (count), `doExpire(key, ttlMs)`, `doPttl`, `doType`, `doKeys(prefix)`
 * - counters: `doIncrBy(key, n)` (missing starts at 0; non-integer value or a result outside
 *   the safe-integer range -> `IPC_NOT_INTEGER`; keeps the TTL)
 * - hashes: `doHset(key, fields)` (new-field count; `fields` is a validated plain object that
 *   may own a `__proto__` field: never assign it into a plain `{}`), `doHget`, `doHgetall`
 *   (build the result with `safeAssign` or a Map), `doHdel(key, fields)`, `doHincrBy`
 * - lists: `doRpush(key, items)`, `doLrange`, `doLlen`, `doLtrim` (Redis index rules)
 * - sets: `doSadd`, `doSrem`, `doSmembers`, `doSismember`, `doScard`
 * - take-and-clear: `doMove(source, destination)`, `doHgetdel`, `doGetdel`
 * - checkpoints: `doDump(prefix)`, `doRestore(entries)` (entries with `expiresAt <= now` skipped)
 * - locks (own namespace): `doLock(key, token, ttlMs)` (set if absent), `doUnlock(key, token)`
 *   and `doExtendLock(key, token, ttlMs)` (only when the stored token equals `token`)
 * - pub/sub: `doSubscribe(channel)` when the first local handler subscribes (resolve once the
 *   subscription is live), `doUnsubscribe(channel)` when the last one leaves, `doPublish(channel,
 *   payload)` with the message already JSON-encoded; incoming messages go to
 *   `this.deliver(channel, payload)`, asynchronously with respect to `publish`.
 * - `doClose()`: release timers, connections, listeners (the base has already refused new calls).
 * Every primitive must see an expired key as missing and keep lock keys out of `doKeys`/`doDump`.
 */
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
  validateDelta,
  validateEntries,
  validateFields,
  validateIndex,
  validateKey,
  validateKeys,
  validateString,
  validateStrings,
  validateValue,
  validateValues,
} from './validate.js'

export type { Awaitable }

export interface BaseIpcOptions {
  /** @default warnings and errors to the console */
  logger?: Logger
}

/**
 * Assigns `target[key] = value` as an own data property, also when `key` is `__proto__`
 * (a plain assignment would change the prototype instead). JSON.parse does the same.
 */
export function safeAssign(target: Record<string, Json>, key: string, value: Json): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
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
        lock: (key, token, ttlMs) => this.doLock(key, token, ttlMs),
        unlock: (key, token) => this.doUnlock(key, token),
        extend: (key, token, ttlMs) => this.doExtendLock(key, token, ttlMs),
        isOpen: () => !this.closed,
        assertOpen: () => this.assertOpen(),
      },
      this.logger,
    )
  }

  // ---- what subclasses implement (see the note at the top of the file) ---------------------
  protected abstract doSet(key: string, value: Json, ttlMs: number | undefined): Awaitable<void>
  protected abstract doGet(key: string): Awaitable<Json | null>
  protected abstract doDel(keys: string[]): Awaitable<number>
  protected abstract doExpire(key: string, ttlMs: number): Awaitable<boolean>
  protected abstract doPttl(key: string): Awaitable<number>
  protected abstract doType(key: string): Awaitable<IpcKeyType | null>
  protected abstract doKeys(prefix: string): Awaitable<string[]>
  protected abstract doIncrBy(key: string, n: number): Awaitable<number>
  protected abstract doHset(key: string, fields: Record<string, Json>): Awaitable<number>
  protected abstract doHget(key: string, field: string): Awaitable<Json | null>
  protected abstract doHgetall(key: string): Awaitable<Record<string, Json>>
  protected abstract doHdel(key: string, fields: string[]): Awaitable<number>
  protected abstract doHincrBy(key: string, field: string, n: number): Awaitable<number>
  protected abstract doRpush(key: string, items: Json[]): Awaitable<number>
  protected abstract doLrange(key: string, start: number, stop: number): Awaitable<Json[]>
  protected abstract doLlen(key: string): Awaitable<number>
  protected abstract doLtrim(key: string, start: number, stop: number): Awaitable<void>
  protected abstract doSadd(key: string, members: string[]): Awaitable<number>
  protected abstract doSrem(key: string, members: string[]): Awaitable<number>
  protected abstract doSmembers(key: string): Awaitable<string[]>
  protected abstract doSismember(key: string, member: string): Awaitable<boolean>
  protected abstract doScard(key: string): Awaitable<number>
  protected abstract doMove(source: string, destination: string): Awaitable<boolean>
  protected abstract doHgetdel(key: string): Awaitable<Record<string, Json>>
  protected abstract doGetdel(key: string): Awaitable<Json | null>
  protected abstract doDump(prefix: string): Awaitable<IpcEntry[]>
  protected abstract doRestore(entries: IpcEntry[]): Awaitable<void>
  protected abstract doLock(key: string, token: string, ttlMs: number): Awaitable<boolean>
  protected abstract doUnlock(key: string, token: string): Awaitable<boolean>
  protected abstract doExtendLock(key: string, token: string, ttlMs: number): Awaitable<boolean>
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

  // ---- strings -----------------------------------------------------------------------------

  async set(key: string, value: Json, ttlSeconds?: number): Promise<void> {
    this.assertOpen()
    validateKey(key)
    validateValue(value)
    return this.doSet(key, value, ttlSeconds === undefined ? undefined : toTtlMs(ttlSeconds))
  }

  async get<T extends Json = Json>(key: string): Promise<T | null> {
    this.assertOpen()
    validateKey(key)
    return this.doGet(key) as Awaitable<T | null>
  }

  async del(...keys: string[]): Promise<number> {
    this.assertOpen()
    validateKeys(keys)
    if (keys.length === 0) return 0
    return this.doDel(keys)
  }

  async expire(key: string, ttlSeconds: number): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    return this.doExpire(key, toTtlMs(ttlSeconds))
  }

  async pttl(key: string): Promise<number> {
    this.assertOpen()
    validateKey(key)
    return this.doPttl(key)
  }

  async type(key: string): Promise<IpcKeyType | null> {
    this.assertOpen()
    validateKey(key)
    return this.doType(key)
  }

  async keys(prefix: string): Promise<string[]> {
    this.assertOpen()
    validateString(prefix, 'prefix')
    return this.doKeys(prefix)
  }

  // ---- counters ----------------------------------------------------------------------------

  async incrBy(key: string, n: number): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateDelta(n)
    return this.doIncrBy(key, n)
  }

  async decrBy(key: string, n: number): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateDelta(n)
    return this.doIncrBy(key, n === 0 ? 0 : -n)
  }

  // ---- hashes ------------------------------------------------------------------------------

  async hset(key: string, fields: Record<string, Json>): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateFields(fields)
    return this.doHset(key, fields)
  }

  async hget<T extends Json = Json>(key: string, field: string): Promise<T | null> {
    this.assertOpen()
    validateKey(key)
    validateString(field, 'field')
    return this.doHget(key, field) as Awaitable<T | null>
  }

  async hgetall(key: string): Promise<Record<string, Json>> {
    this.assertOpen()
    validateKey(key)
    return this.doHgetall(key)
  }

  async hdel(key: string, ...fields: string[]): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateStrings(fields, 'field')
    return this.doHdel(key, fields)
  }

  async hincrBy(key: string, field: string, n: number): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateString(field, 'field')
    validateDelta(n)
    return this.doHincrBy(key, field, n)
  }

  // ---- lists -------------------------------------------------------------------------------

  async rpush(key: string, ...items: Json[]): Promise<number> {
    this.assertOpen()
    validateKey(key)
    if (items.length === 0) throw invalidArgument('rpush needs at least one item')
    validateValues(items)
    return this.doRpush(key, items)
  }

  async lrange<T extends Json = Json>(key: string, start: number, stop: number): Promise<T[]> {
    this.assertOpen()
    validateKey(key)
    validateIndex(start, 'start')
    validateIndex(stop, 'stop')
    return this.doLrange(key, start, stop) as Awaitable<T[]>
  }

  async llen(key: string): Promise<number> {
    this.assertOpen()
    validateKey(key)
    return this.doLlen(key)
  }

  async ltrim(key: string, start: number, stop: number): Promise<void> {
    this.assertOpen()
    validateKey(key)
    validateIndex(start, 'start')
    validateIndex(stop, 'stop')
    return this.doLtrim(key, start, stop)
  }

  // ---- sets --------------------------------------------------------------------------------

  async sadd(key: string, ...members: string[]): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateStrings(members, 'member')
    return this.doSadd(key, members)
  }

  async srem(key: string, ...members: string[]): Promise<number> {
    this.assertOpen()
    validateKey(key)
    validateStrings(members, 'member')
    return this.doSrem(key, members)
  }

  async smembers(key: string): Promise<string[]> {
    this.assertOpen()
    validateKey(key)
    return this.doSmembers(key)
  }

  async sismember(key: string, member: string): Promise<boolean> {
    this.assertOpen()
    validateKey(key)
    validateString(member, 'member')
    return this.doSismember(key, member)
  }

  async scard(key: string): Promise<number> {
    this.assertOpen()
    validateKey(key)
    return this.doScard(key)
  }

  // ---- take-and-clear ----------------------------------------------------------------------

  async move(source: string, destination: string): Promise<boolean> {
    this.assertOpen()
    validateKey(source, 'source')
    validateKey(destination, 'destination')
    return this.doMove(source, destination)
  }

  async hgetdel(key: string): Promise<Record<string, Json>> {
    this.assertOpen()
    validateKey(key)
    return this.doHgetdel(key)
  }

  async getdel<T extends Json = Json>(key: string): Promise<T | null> {
    this.assertOpen()
    validateKey(key)
    return this.doGetdel(key) as Awaitable<T | null>
  }

  // ---- checkpoints -------------------------------------------------------------------------

  async dump(prefix: string): Promise<IpcEntry[]> {
    this.assertOpen()
    validateString(prefix, 'prefix')
    return this.doDump(prefix)
  }

  async restore(entries: IpcEntry[]): Promise<void> {
    this.assertOpen()
    validateEntries(entries)
    if (entries.length === 0) return
    return this.doRestore(entries)
  }

  // ---- locks -------------------------------------------------------------------------------

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
