/**
 * A single-threaded key/value store with Redis semantics: typed keys (string, hash, list, set),
 * WRONGTYPE errors, TTLs, and a separate lock namespace. Every command runs synchronously to
 * completion, which is what makes each one atomic. The memory driver and the cluster primary
 * both run commands by name through `exec`; each command's body is in `commands/`, one file per
 * family, and this class keeps what they share: the keys, their deadlines and the lookups that
 * treat an expired key as missing.
 *
 * Expiry needs no timer per key: every access checks the key's deadline (lazy expiry), and one
 * periodic sweep pops due deadlines from a min-heap to reclaim keys nobody reads again.
 *
 * Stored values cannot be changed by callers: primitives are immutable, and objects/arrays are
 * kept as their JSON text (`Encoded`) and parsed into a fresh copy on every read.
 * @internal
 */
import type { CommandArgs, CommandName, CommandResult } from '../../commands.js'
import type { IpcKeyType } from '../../types.js'
import { memoryCommands } from './commands/index.js'
import { ExpiryHeap } from './expiry-heap.js'
import { type Entry, wrongType } from './store-values.js'

export interface LockEntry {
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

/** One command's body: runs on the store, with checked command-form arguments. */
export type MemoryCommand<K extends CommandName> = (
  store: MemoryStore,
  args: CommandArgs<K>,
) => CommandResult<K>
export type MemoryCommands = { readonly [K in CommandName]: MemoryCommand<K> }

export class MemoryStore {
  /** The data keys. Command bodies read them through `live`/`typed`, which honour expiry. */
  readonly data = new Map<string, Entry>()
  /** The lock namespace: never listed with the data keys. */
  readonly locks = new Map<string, LockEntry>()
  readonly now: () => number
  private readonly deadlines = new ExpiryHeap()
  private sweepTimer: NodeJS.Timeout | undefined

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1000)
    this.sweepTimer.unref()
  }

  /** Runs command `name` (arguments must be checked and in command form). */
  exec<K extends CommandName>(name: K, args: CommandArgs<K>): CommandResult<K> {
    return (memoryCommands[name] as MemoryCommand<K>)(this, args)
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

  // ---- what command bodies share -----------------------------------------------------------

  /** The live entry at `key`; an expired one is deleted and reads as missing. */
  live(key: string): Entry | undefined {
    const entry = this.data.get(key)
    if (entry !== undefined && entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      this.data.delete(key)
      return undefined
    }
    return entry
  }

  /** The live entry at `key`, which must hold `type` (else `IPC_WRONGTYPE` naming `op`). */
  typed(key: string, type: IpcKeyType, op: string): Entry | undefined {
    const entry = this.live(key)
    if (entry !== undefined && entry.type !== type) throw wrongType(key, entry.type, op)
    return entry
  }

  /** The epoch ms `ttlMs` from now, registered for the sweep. */
  deadline(ttlMs: number, key: string, lock: boolean): number {
    const at = this.now() + ttlMs
    this.deadlines.push(at, key, lock)
    return at
  }

  /** Stores an entry that may carry its own deadline (move, restore). */
  put(key: string, entry: Entry): void {
    this.data.set(key, entry)
    if (entry.expiresAt !== 0) this.deadlines.push(entry.expiresAt, key, false)
  }

  /** The live lock at `key`; an expired one is deleted. */
  liveLock(key: string): LockEntry | undefined {
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
}
