/**
 * The IPC contract: one API, the same semantics on every driver (Redis is the reference).
 *
 * Values are JSON data that round-trips exactly: `null`, booleans, finite numbers, strings,
 * arrays and plain objects of those. Anything else (undefined, functions, BigInt, NaN,
 * Infinity, Dates, class instances, cyclic structures) is refused with `IPC_INVALID_VALUE`
 * before anything is stored. Keys are non-empty strings of any characters (`:` included).
 *
 * Every method is atomic on every driver. A key holds one type at a time (string value,
 * hash, list or set); an operation for another type fails with `IPC_WRONGTYPE`, as in Redis.
 * Every operation sees an expired key as missing.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** The type stored at a key, as Redis's TYPE command names it. */
export type IpcKeyType = 'string' | 'hash' | 'list' | 'set'

/** One key's full state, as `dump` returns it and `restore` takes it (checkpoints). */
export type IpcEntry =
  | { key: string; type: 'string'; value: Json; expiresAt?: number }
  | { key: string; type: 'hash'; value: Record<string, Json>; expiresAt?: number }
  | { key: string; type: 'list'; value: Json[]; expiresAt?: number }
  | { key: string; type: 'set'; value: string[]; expiresAt?: number }

export type MessageHandler = (message: Json, channel: string) => void

/** Releases one subscription; idempotent. */
export type Unsubscribe = () => Promise<void>

export interface WithLockOptions {
  /**
   * How long to keep trying to take a lock that someone else holds, in milliseconds.
   * @default 10000
   */
  waitMs?: number
  /**
   * Pause between two attempts, in milliseconds.
   * @default 25
   */
  retryDelayMs?: number
  /**
   * Renew the lock's TTL while `fn` runs (every ttl/3), so a long critical section keeps it.
   * @default true
   */
  autoExtend?: boolean
}

export interface Ipc {
  /** Which driver this instance runs on. */
  readonly driver: 'memory' | 'cluster' | 'redis'

  // Strings --------------------------------------------------------------------------------
  /** Stores `value` (replacing any type). `ttlSeconds` (> 0, may be fractional) expires it. */
  set(key: string, value: Json, ttlSeconds?: number): Promise<void>
  /** The value, or `null` when the key is missing or expired. */
  get<T extends Json = Json>(key: string): Promise<T | null>
  /** Deletes keys of any type; returns how many existed. */
  del(...keys: string[]): Promise<number>
  /** Sets a TTL on an existing key; false when the key is missing. */
  expire(key: string, ttlSeconds: number): Promise<boolean>
  /** Remaining TTL in ms: -2 when missing, -1 when the key has no TTL (as Redis PTTL). */
  pttl(key: string): Promise<number>
  /** The key's type, or null when missing. */
  type(key: string): Promise<IpcKeyType | null>
  /** Every live key that starts with `prefix` (order unspecified). */
  keys(prefix: string): Promise<string[]>

  // Counters -------------------------------------------------------------------------------
  /** Adds the safe integer `n`; a missing key starts at 0; returns the new value. */
  incrBy(key: string, n: number): Promise<number>
  decrBy(key: string, n: number): Promise<number>

  // Hashes ---------------------------------------------------------------------------------
  /** Merges `fields` into the hash; returns how many fields were new. */
  hset(key: string, fields: Record<string, Json>): Promise<number>
  hget<T extends Json = Json>(key: string, field: string): Promise<T | null>
  /** All fields, `{}` when the key is missing. */
  hgetall(key: string): Promise<Record<string, Json>>
  /** The values of several fields in one step, in their order; `null` for a missing one (Redis HMGET). */
  hmget<T extends Json = Json>(key: string, ...fields: string[]): Promise<Array<T | null>>
  /** Deletes fields; returns how many existed. */
  hdel(key: string, ...fields: string[]): Promise<number>
  /** Adds the safe integer `n` to one field (missing field starts at 0); returns the new value. */
  hincrBy(key: string, field: string, n: number): Promise<number>

  // Lists ----------------------------------------------------------------------------------
  /** Appends items; returns the new length. */
  rpush(key: string, ...items: Json[]): Promise<number>
  /** Items from `start` to `stop` inclusive; negative indexes count from the end (Redis LRANGE). */
  lrange<T extends Json = Json>(key: string, start: number, stop: number): Promise<T[]>
  llen(key: string): Promise<number>
  /** Keeps only `start..stop` (Redis LTRIM). */
  ltrim(key: string, start: number, stop: number): Promise<void>

  // Sets -----------------------------------------------------------------------------------
  /** Adds string members; returns how many were new. O(1) per member. */
  sadd(key: string, ...members: string[]): Promise<number>
  /** Removes members; returns how many were there. */
  srem(key: string, ...members: string[]): Promise<number>
  smembers(key: string): Promise<string[]>
  sismember(key: string, member: string): Promise<boolean>
  scard(key: string): Promise<number>

  // Take-and-clear (for write-behind buffers) ---------------------------------------------
  /**
   * Atomically moves whatever `source` holds (any type, with its TTL) to `destination`.
   * Returns false and changes nothing when `source` is missing or `destination` exists
   * (Redis RENAMENX, without its error on a missing source). Writes that arrive at `source`
   * after the move start a fresh key, so nothing written during a flush is lost.
   */
  move(source: string, destination: string): Promise<boolean>
  /** Atomically reads a hash and deletes it; `{}` when missing. */
  hgetdel(key: string): Promise<Record<string, Json>>
  /** Atomically reads a value and deletes it (Redis GETDEL). */
  getdel<T extends Json = Json>(key: string): Promise<T | null>

  // Checkpoints ----------------------------------------------------------------------------
  /** A consistent snapshot of every live key that starts with `prefix`. */
  dump(prefix: string): Promise<IpcEntry[]>
  /** Writes entries back (replacing what their keys hold). Entries already expired are skipped. */
  restore(entries: IpcEntry[]): Promise<void>

  // Locks ----------------------------------------------------------------------------------
  /**
   * Takes `key` for `ttlSeconds` if nobody holds it. The lock carries an owner token unique to
   * this call; only that owner can unlock or extend it. Lock keys live in their own namespace.
   */
  lock(key: string, ttlSeconds: number): Promise<boolean>
  /** Releases the lock if this instance holds it; a non-holder gets false and nothing changes. */
  unlock(key: string): Promise<boolean>
  /** Renews a lock this instance holds; false when it no longer holds it. */
  extendLock(key: string, ttlSeconds: number): Promise<boolean>
  /**
   * Takes the lock (waiting up to `waitMs`), runs `fn`, always releases.
   * Fails with `IPC_LOCK_TIMEOUT` when the lock cannot be taken in time.
   */
  withLock<T>(
    key: string,
    ttlSeconds: number,
    fn: () => Promise<T> | T,
    options?: WithLockOptions,
  ): Promise<T>

  // Pub/sub --------------------------------------------------------------------------------
  /** Every subscriber in every process gets each message once. Returns the unsubscribe function. */
  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe>
  publish(channel: string, message: Json): Promise<void>

  /** Releases timers, connections and listeners. Later calls fail with `IPC_CLOSED`. */
  close(): Promise<void>
}

/** Where libraries send what they have to say. Default: warnings and errors only. */
export interface Logger {
  debug(message: string, ...meta: unknown[]): void
  info(message: string, ...meta: unknown[]): void
  warn(message: string, ...meta: unknown[]): void
  error(message: string, ...meta: unknown[]): void
}

export interface MemoryIpcOptions {
  driver: 'memory'
  /**
   * Receives the driver's messages (lost connections, failing subscribers, ...), unprefixed.
   * @default warnings and errors to the console, prefixed `[tidesync/ipc]`
   */
  logger?: Logger
}

export interface ClusterIpcOptions {
  driver: 'cluster'
  /**
   * How long a worker waits for the primary's answer before failing with
   * `IpcUnavailableError` (outcome unknown, never retried by the driver), in ms.
   * @default 10000
   */
  requestTimeoutMs?: number
  /**
   * Receives the driver's messages (lost connections, failing subscribers, ...), unprefixed.
   * @default warnings and errors to the console, prefixed `[tidesync/ipc]`
   */
  logger?: Logger
}

export interface RedisIpcOptions {
  driver: 'redis'
  /** A redis:// URL. @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  url?: string
  /** Prepended to every key and channel, so several apps can share one Redis. @default 'tidesync:' */
  keyPrefix?: string
  /**
   * How long a command may wait for Redis during an outage before failing with
   * `IPC_UNAVAILABLE`, in ms.
   * @default 5000
   */
  commandTimeoutMs?: number
  /**
   * Receives the driver's messages (lost connections, failing subscribers, ...), unprefixed.
   * @default warnings and errors to the console, prefixed `[tidesync/ipc]`
   */
  logger?: Logger
}

export type IpcOptions = MemoryIpcOptions | ClusterIpcOptions | RedisIpcOptions
