import type { Clock, Timers } from '../types.js'
import type { LocalDb } from './database.js'
import { SerialQueue } from './serial-queue.js'

/**
 * A lock shared by every tab on one database: only the holder pushes the outbox. Web Locks
 * (`navigator.locks`) when the platform has them; otherwise a lease row in the `_locks` table,
 * renewed while held and expiring if its tab dies.
 */
export interface CrossTabLock {
  /** Runs `fn` while holding the lock `name`, waiting for other tabs to release it first. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>
}

interface WebLocks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}

/** The platform's Web Locks API, if any. */
export function webLocks(): WebLocks | undefined {
  const nav = (globalThis as { navigator?: { locks?: WebLocks } }).navigator
  return nav?.locks && typeof nav.locks.request === 'function' ? nav.locks : undefined
}

export class WebLocksLock implements CrossTabLock {
  constructor(
    private readonly locks: WebLocks,
    private readonly prefix: string,
  ) {}

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.request(`${this.prefix}:${name}`, fn)
  }
}

export interface LeaseOptions {
  /** How long a lease lasts without renewal. @default 10000 */
  leaseMs?: number
  /** Pause between two attempts to take a held lease. @default 50 */
  retryMs?: number
}

/** The lease fallback: a row `{ name, holder, expiresAt }` taken in a Dexie transaction. */
export class DexieLeaseLock implements CrossTabLock {
  private readonly leaseMs: number
  private readonly retryMs: number
  /** The lease is per tab: callers in this tab queue here first, so a release never frees it for another tab while a caller of this tab still counts on it. */
  private readonly local = new Map<string, SerialQueue>()

  constructor(
    private readonly db: LocalDb,
    private readonly holder: string,
    private readonly clock: Clock,
    private readonly timers: Timers,
    options: LeaseOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 10_000
    this.retryMs = options.retryMs ?? 50
  }

  /** Takes the lease if it is free, expired or already ours. */
  private tryTake(name: string): Promise<boolean> {
    return this.db.dexie.transaction('rw', this.db.locks, async () => {
      const now = this.clock.now()
      const row = await this.db.locks.get(name)
      if (row && row.holder !== this.holder && row.expiresAt > now) return false
      await this.db.locks.put({ name, holder: this.holder, expiresAt: now + this.leaseMs })
      return true
    })
  }

  private release(name: string): Promise<void> {
    return this.db.dexie.transaction('rw', this.db.locks, async () => {
      const row = await this.db.locks.get(name)
      if (row?.holder === this.holder) await this.db.locks.delete(name)
    })
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let queue = this.local.get(name)
    if (!queue) {
      queue = new SerialQueue()
      this.local.set(name, queue)
    }
    return queue.run(() => this.holdLease(name, fn))
  }

  private async holdLease<T>(name: string, fn: () => Promise<T>): Promise<T> {
    while (!(await this.tryTake(name))) {
      await new Promise<void>((resolve) => this.timers.setTimeout(resolve, this.retryMs))
    }
    let renewal: unknown
    let stopped = false
    const renew = () => {
      if (stopped) return
      renewal = this.timers.setTimeout(() => {
        if (!stopped) this.tryTake(name).then(renew, () => {})
      }, this.leaseMs / 3)
    }
    renew()
    try {
      return await fn()
    } finally {
      stopped = true
      this.timers.clearTimeout(renewal)
      await this.release(name).catch(() => {})
    }
  }
}
