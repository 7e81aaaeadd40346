/**
 * A single-threaded key/value store with Redis semantics: typed keys (string, hash, list, set),
 * WRONGTYPE errors, TTLs, and a separate lock namespace. Every command runs synchronously to
 * completion, which is what makes each one atomic. The memory driver calls its methods directly;
 * the cluster primary runs the same commands through `exec(name, args)`.
 *
 * Expiry needs no timer per key: every access checks the key's deadline (lazy expiry), and one
 * periodic sweep pops due deadlines from a min-heap to reclaim keys nobody reads again.
 *
 * Stored values cannot be changed by callers: primitives are immutable, and objects/arrays are
 * kept as their JSON text (`Encoded`) and parsed into a fresh copy on every read.
 * @internal
 */
import { safeAssign } from '../../base-ipc.js'
import type { CommandArgs, CommandHandlers, CommandName, CommandResult } from '../../commands.js'
import type { IpcEntry, IpcKeyType, Json } from '../../types.js'
import { ExpiryHeap } from './expiry-heap.js'
import {
  checkedSum,
  decode,
  Entry,
  type EntryValue,
  encode,
  range,
  type Stored,
  wrongType,
} from './store-values.js'

interface LockEntry {
  token: string
  expiresAt: number
}

export interface MemoryStoreOptions {
  /**
   * How often expired keys nobody reads again are reclaimed, in ms (reads never see them anyway).
   * @default 1000
   */
  sweepIntervalMs?: number
  /** The clock, in epoch ms. @default Date.now */
  now?: () => number
}

export class MemoryStore implements CommandHandlers {
  private readonly data = new Map<string, Entry>()
  private readonly locks = new Map<string, LockEntry>()
  private readonly deadlines = new ExpiryHeap()
  private readonly now: () => number
  private sweepTimer: NodeJS.Timeout | undefined

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000)
    this.sweepTimer.unref()
  }

  /** Runs command `name` (the cluster primary's entry point; arguments must be validated). */
  exec<K extends CommandName>(name: K, args: CommandArgs<K>): CommandResult<K> {
    return (this[name] as (...a: CommandArgs<K>) => CommandResult<K>)(...args)
  }

  /** Stops the sweep timer. The data stays readable (a closed driver stops calling anyway). */
  close(): void {
    clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
  }

  /** Drops every expired key whose deadline is due. Runs periodically; safe to call any time. */
  sweep(): void {
    const now = this.now()
    for (let due = this.deadlines.popDue(now); due; due = this.deadlines.popDue(now)) {
      const map = due.lock ? this.locks : this.data
      const entry = map.get(due.key)
      if (entry && entry.expiresAt !== 0 && entry.expiresAt <= now) map.delete(due.key)
    }
    // Deadlines that were replaced (a TTL renewed, a key deleted) pile up as stale entries;
    // rebuild from the live keys when they outnumber them by far.
    if (this.deadlines.size > 4 * (this.data.size + this.locks.size) + 1024) {
      const live = []
      for (const [key, entry] of this.data)
        if (entry.expiresAt) live.push({ at: entry.expiresAt, key, lock: false })
      for (const [key, entry] of this.locks) live.push({ at: entry.expiresAt, key, lock: true })
      this.deadlines.rebuild(live)
    }
  }

  // ---- key lookup --------------------------------------------------------------------------

  /** The live entry at `key`; an expired one is deleted and reads as missing. */
  private live(key: string): Entry | undefined {
    const entry = this.data.get(key)
    if (entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      this.data.delete(key)
      return undefined
    }
    return entry
  }

  private typed(key: string, type: IpcKeyType, op: string): Entry | undefined {
    const entry = this.live(key)
    if (entry !== undefined && entry.type !== type) throw wrongType(key, entry.type, op)
    return entry
  }

  private deadline(ttlMs: number, key: string, lock: boolean): number {
    const at = this.now() + ttlMs
    this.deadlines.push(at, key, lock)
    return at
  }

  private put(key: string, entry: Entry): void {
    this.data.set(key, entry)
    if (entry.expiresAt !== 0) this.deadlines.push(entry.expiresAt, key, false)
  }

  // ---- strings -----------------------------------------------------------------------------

  set(key: string, value: Json, ttlMs: number | null): undefined {
    const expiresAt = ttlMs === null ? 0 : this.deadline(ttlMs, key, false)
    this.data.set(key, new Entry('string', encode(value), expiresAt))
    return undefined
  }

  get(key: string): Json | null {
    const entry = this.typed(key, 'string', 'get')
    return entry === undefined ? null : decode(entry.value as Stored)
  }

  del(keys: string[]): number {
    let count = 0
    for (const key of keys) {
      if (this.live(key) !== undefined) {
        this.data.delete(key)
        count++
      }
    }
    return count
  }

  expire(key: string, ttlMs: number): boolean {
    const entry = this.live(key)
    if (entry === undefined) return false
    entry.expiresAt = this.deadline(ttlMs, key, false)
    return true
  }

  pttl(key: string): number {
    const entry = this.live(key)
    if (entry === undefined) return -2
    return entry.expiresAt === 0 ? -1 : entry.expiresAt - this.now()
  }

  type(key: string): IpcKeyType | null {
    return this.live(key)?.type ?? null
  }

  keys(prefix: string): string[] {
    const now = this.now()
    const keys: string[] = []
    for (const [key, entry] of this.data) {
      if (key.startsWith(prefix) && (entry.expiresAt === 0 || entry.expiresAt > now)) keys.push(key)
    }
    return keys
  }

  incrBy(key: string, n: number): number {
    const entry = this.typed(key, 'string', 'incrBy')
    const result = checkedSum(entry?.value as Stored | undefined, n, `The value at ${JSON.stringify(key)}`)
    if (entry === undefined) this.data.set(key, new Entry('string', result, 0))
    else entry.value = result
    return result
  }

  // ---- hashes ------------------------------------------------------------------------------

  private hash(key: string, op: string): Map<string, Stored> | undefined {
    return this.typed(key, 'hash', op)?.value as Map<string, Stored> | undefined
  }

  hset(key: string, fields: Record<string, Json>): number {
    let hash = this.hash(key, 'hset')
    if (hash === undefined) {
      hash = new Map()
      this.data.set(key, new Entry('hash', hash, 0))
    }
    let added = 0
    for (const field of Object.keys(fields)) {
      if (!hash.has(field)) added++
      hash.set(field, encode(fields[field]!))
    }
    return added
  }

  hget(key: string, field: string): Json | null {
    const stored = this.hash(key, 'hget')?.get(field)
    return stored === undefined ? null : decode(stored)
  }

  hgetall(key: string): Record<string, Json> {
    const result: Record<string, Json> = {}
    const hash = this.hash(key, 'hgetall')
    if (hash) for (const [field, stored] of hash) safeAssign(result, field, decode(stored))
    return result
  }

  hdel(key: string, fields: string[]): number {
    const hash = this.hash(key, 'hdel')
    if (hash === undefined) return 0
    let removed = 0
    for (const field of fields) if (hash.delete(field)) removed++
    if (hash.size === 0) this.data.delete(key)
    return removed
  }

  hincrBy(key: string, field: string, n: number): number {
    let hash = this.hash(key, 'hincrBy')
    const result = checkedSum(hash?.get(field), n, `Field ${JSON.stringify(field)} of ${JSON.stringify(key)}`)
    if (hash === undefined) {
      hash = new Map()
      this.data.set(key, new Entry('hash', hash, 0))
    }
    hash.set(field, result)
    return result
  }

  hgetdel(key: string): Record<string, Json> {
    const result = this.hgetall(key)
    this.data.delete(key)
    return result
  }

  getdel(key: string): Json | null {
    const value = this.get(key)
    this.data.delete(key)
    return value
  }

  // ---- lists -------------------------------------------------------------------------------

  private list(key: string, op: string): Stored[] | undefined {
    return this.typed(key, 'list', op)?.value as Stored[] | undefined
  }

  rpush(key: string, items: Json[]): number {
    let list = this.list(key, 'rpush')
    if (list === undefined) {
      list = []
      this.data.set(key, new Entry('list', list, 0))
    }
    for (const item of items) list.push(encode(item))
    return list.length
  }

  lrange(key: string, start: number, stop: number): Json[] {
    const list = this.list(key, 'lrange')
    if (list === undefined) return []
    const bounds = range(list.length, start, stop)
    if (bounds === null) return []
    const result: Json[] = []
    for (let i = bounds[0]; i <= bounds[1]; i++) result.push(decode(list[i]!))
    return result
  }

  llen(key: string): number {
    return this.list(key, 'llen')?.length ?? 0
  }

  ltrim(key: string, start: number, stop: number): undefined {
    const entry = this.typed(key, 'list', 'ltrim')
    if (entry === undefined) return undefined
    const list = entry.value as Stored[]
    const bounds = range(list.length, start, stop)
    if (bounds === null) this.data.delete(key)
    else entry.value = list.slice(bounds[0], bounds[1] + 1)
    return undefined
  }

  // ---- sets --------------------------------------------------------------------------------

  private members(key: string, op: string): Set<string> | undefined {
    return this.typed(key, 'set', op)?.value as Set<string> | undefined
  }

  sadd(key: string, members: string[]): number {
    let set = this.members(key, 'sadd')
    if (set === undefined) {
      set = new Set()
      this.data.set(key, new Entry('set', set, 0))
    }
    const before = set.size
    for (const member of members) set.add(member)
    return set.size - before
  }

  srem(key: string, members: string[]): number {
    const set = this.members(key, 'srem')
    if (set === undefined) return 0
    let removed = 0
    for (const member of members) if (set.delete(member)) removed++
    if (set.size === 0) this.data.delete(key)
    return removed
  }

  smembers(key: string): string[] {
    const set = this.members(key, 'smembers')
    return set === undefined ? [] : [...set]
  }

  sismember(key: string, member: string): boolean {
    return this.members(key, 'sismember')?.has(member) ?? false
  }

  scard(key: string): number {
    return this.members(key, 'scard')?.size ?? 0
  }

  // ---- take-and-clear, checkpoints ---------------------------------------------------------

  move(source: string, destination: string): boolean {
    const entry = this.live(source)
    if (entry === undefined || this.live(destination) !== undefined) return false
    this.data.delete(source)
    this.put(destination, entry)
    return true
  }

  dump(prefix: string): IpcEntry[] {
    const now = this.now()
    const entries: IpcEntry[] = []
    for (const [key, entry] of this.data) {
      if (!key.startsWith(prefix) || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue
      const expiry = entry.expiresAt === 0 ? {} : { expiresAt: entry.expiresAt }
      switch (entry.type) {
        case 'string':
          entries.push({ key, type: 'string', value: decode(entry.value as Stored), ...expiry })
          break
        case 'hash': {
          const value: Record<string, Json> = {}
          for (const [field, stored] of entry.value as Map<string, Stored>)
            safeAssign(value, field, decode(stored))
          entries.push({ key, type: 'hash', value, ...expiry })
          break
        }
        case 'list':
          entries.push({ key, type: 'list', value: (entry.value as Stored[]).map(decode), ...expiry })
          break
        case 'set':
          entries.push({ key, type: 'set', value: [...(entry.value as Set<string>)], ...expiry })
          break
      }
    }
    return entries
  }

  restore(entries: IpcEntry[]): undefined {
    const now = this.now()
    for (const entry of entries) {
      const expiresAt = entry.expiresAt ?? 0
      if (expiresAt !== 0 && expiresAt <= now) continue
      let value: EntryValue
      let size = 1
      switch (entry.type) {
        case 'string':
          value = encode(entry.value)
          break
        case 'hash': {
          const hash = new Map<string, Stored>()
          for (const field of Object.keys(entry.value)) hash.set(field, encode(entry.value[field]!))
          value = hash
          size = hash.size
          break
        }
        case 'list':
          value = entry.value.map(encode)
          size = entry.value.length
          break
        case 'set':
          value = new Set(entry.value)
          size = value.size
          break
      }
      // Redis holds no empty hash/list/set: an empty one means the key does not exist.
      if (size === 0) this.data.delete(entry.key)
      else this.put(entry.key, new Entry(entry.type, value, expiresAt))
    }
    return undefined
  }

  // ---- locks (own namespace) ---------------------------------------------------------------

  private liveLock(key: string): LockEntry | undefined {
    const lock = this.locks.get(key)
    if (lock !== undefined && lock.expiresAt <= this.now()) {
      this.locks.delete(key)
      return undefined
    }
    return lock
  }

  /** The token of the live lock at `key` (not a command: for the cluster primary's bookkeeping). */
  lockOwner(key: string): string | undefined {
    return this.liveLock(key)?.token
  }

  lock(key: string, token: string, ttlMs: number): boolean {
    if (this.liveLock(key) !== undefined) return false
    this.locks.set(key, { token, expiresAt: this.deadline(ttlMs, key, true) })
    return true
  }

  unlock(key: string, token: string): boolean {
    if (this.liveLock(key)?.token !== token) return false
    this.locks.delete(key)
    return true
  }

  extendLock(key: string, token: string, ttlMs: number): boolean {
    const lock = this.liveLock(key)
    if (lock?.token !== token) return false
    lock.expiresAt = this.deadline(ttlMs, key, true)
    return true
  }
}
