/**
 * Lock ownership for one instance, shared by every driver through `BaseIpc`: each successful
 * `lock` gets a fresh random owner token, kept here by key, so only this instance's holder can
 * unlock or extend it (the store compares tokens). `withLock` keeps its own token, so a lock
 * that expired and was re-taken by another caller is never released by the first one.
 * @internal
 */
import { randomUUID } from 'node:crypto'
import { IpcError } from './errors.js'
import type { Awaitable } from './local-subscriptions.js'
import type { Logger, WithLockOptions } from './types.js'
import { invalidArgument } from './validate.js'

export interface LockPrimitives {
  /** Sets the lock if absent. */
  lock(key: string, token: string, ttlMs: number): Awaitable<boolean>
  /** Deletes the lock if `token` owns it. */
  unlock(key: string, token: string): Awaitable<boolean>
  /** Renews the lock if `token` owns it. */
  extend(key: string, token: string, ttlMs: number): Awaitable<boolean>
  /** False once the instance is closed. */
  isOpen(): boolean
  /** Throws IPC_CLOSED once closed. */
  assertOpen(): void
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class OwnedLocks {
  /** Owner token of each lock this instance holds, by lock key. */
  private readonly tokens = new Map<string, string>()

  constructor(
    private readonly primitives: LockPrimitives,
    private readonly logger: Logger,
  ) {}

  /** Tries once to take the lock; returns the owner token, or null when someone holds it. */
  async acquire(key: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID()
    if (!(await this.primitives.lock(key, token, ttlMs))) return null
    this.tokens.set(key, token)
    return token
  }

  /** Releases the lock this instance holds at `key`; false when it holds none. */
  async unlock(key: string): Promise<boolean> {
    const token = this.tokens.get(key)
    return token === undefined ? false : this.release(key, token)
  }

  async extend(key: string, ttlMs: number): Promise<boolean> {
    const token = this.tokens.get(key)
    if (token === undefined) return false
    const extended = await this.primitives.extend(key, token, ttlMs)
    if (!extended && this.tokens.get(key) === token) this.tokens.delete(key)
    return extended
  }

  async withLock<T>(
    key: string,
    ttlMs: number,
    fn: () => Promise<T> | T,
    options: WithLockOptions,
  ): Promise<T> {
    const waitMs = options.waitMs ?? 10_000
    const retryDelayMs = options.retryDelayMs ?? 25
    if (!(waitMs >= 0 && Number.isFinite(waitMs)))
      throw invalidArgument('waitMs must be a finite number >= 0')
    if (!(retryDelayMs >= 0 && Number.isFinite(retryDelayMs))) {
      throw invalidArgument('retryDelayMs must be a finite number >= 0')
    }

    const deadline = Date.now() + waitMs
    let token = await this.acquire(key, ttlMs)
    while (token === null) {
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new IpcError(
          'IPC_LOCK_TIMEOUT',
          `Could not take lock ${JSON.stringify(key)} within ${waitMs} ms`,
        )
      }
      // Jitter keeps contending processes from retrying in lock-step.
      await sleep(Math.min(left, retryDelayMs * (0.5 + Math.random())))
      this.primitives.assertOpen()
      token = await this.acquire(key, ttlMs)
    }

    const held = token
    let timer: NodeJS.Timeout | undefined
    if (options.autoExtend ?? true) {
      timer = setInterval(() => this.renew(key, held, ttlMs), Math.max(1, Math.floor(ttlMs / 3)))
      timer.unref()
    }
    try {
      return await fn()
    } finally {
      clearInterval(timer)
      try {
        await this.release(key, held)
      } catch (error) {
        this.logger.warn(`Could not release lock ${JSON.stringify(key)}; its TTL will free it`, error)
      }
    }
  }

  /** Forgets every token (on close: the locks themselves are left to their TTL). */
  clear(): void {
    this.tokens.clear()
  }

  /** Releases the lock if `token` still owns it. After close the driver is gone: the TTL frees it. */
  private async release(key: string, token: string): Promise<boolean> {
    if (this.tokens.get(key) === token) this.tokens.delete(key)
    if (!this.primitives.isOpen()) return false
    return this.primitives.unlock(key, token)
  }

  private renew(key: string, token: string, ttlMs: number): void {
    if (!this.primitives.isOpen() || this.tokens.get(key) !== token) return
    Promise.resolve()
      .then(() => this.primitives.extend(key, token, ttlMs))
      .then(
        (extended) => {
          // Released meanwhile (withLock finished): not a loss.
          if (!extended && this.tokens.get(key) === token) {
            this.tokens.delete(key)
            this.logger.warn(`Lost lock ${JSON.stringify(key)} while holding it (its TTL ran out)`)
          }
        },
        (error: unknown) => this.logger.warn(`Could not extend lock ${JSON.stringify(key)}`, error),
      )
  }
}
