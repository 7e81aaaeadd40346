import { Redis, type RedisOptions } from 'ioredis'
import { IpcError, IpcUnavailableError } from '../../errors.js'
import type { Logger } from '../../types.js'
import { classifyRedisError } from './map-error.js'
import { type ScriptCommands, scripts } from './scripts.js'

/** @internal */
export interface RedisConnectionOptions {
  url: string
  /** Shown in CLIENT LIST and in log lines. */
  name: string
  commandTimeoutMs: number
  autoPipelining: boolean
  /**
   * Integer replies as strings. Why: ioredis 6.0.0's RESP decoder rounds integers from
   * MAX_SAFE_INTEGER - 46 to MAX_SAFE_INTEGER (it adds the ASCII digit before subtracting '0',
   * fixed upstream in redis/ioredis#2164), so INCRBY's result there cannot be trusted as a
   * number, nor told apart from an out-of-range one. Strings are exact; the driver converts.
   */
  stringNumbers: boolean
  logger: Logger
}

interface ReadyWaiter {
  resolve(): void
  reject(error: Error): void
  timer: NodeJS.Timeout
}

/**
 * One ioredis connection with bounded waiting during outages.
 *
 * How a command behaves when Redis goes away (why not ioredis's defaults: its offline queue
 * waits forever by default, its `commandTimeout` rejects a queued command but still sends it
 * after the reconnect, and it resends commands that were in flight, which can apply an
 * `INCRBY` twice):
 *
 * - No offline queue in ioredis (`enableOfflineQueue: false`): without a connection a command
 *   is refused at once, unsent. `run()` then waits for the connection and sends it again,
 *   until `commandTimeoutMs` after the call; past that it fails with `IpcUnavailableError`
 *   (`outcomeUnknown: false`, nothing was applied).
 * - A command in flight when the socket closes is rejected by ioredis at once
 *   (`maxRetriesPerRequest: 0`, no resend). `run()` sends it again only when the operation is
 *   idempotent (reads, SET, ...); otherwise it fails with `outcomeUnknown: true`.
 * - A socket that stays silent for `commandTimeoutMs` while replies are due is destroyed
 *   (`socketTimeout`), which turns a hung Redis into the case above.
 * - Reconnects retry forever in the background with capped backoff (at most
 *   `commandTimeoutMs / 10`, between 50 ms and 1 s), so the driver recovers by itself after
 *   any outage; only each command's wait is bounded.
 *
 * The fast path (connection up) adds no timer and no bookkeeping per command.
 *
 * @internal
 */
/** The ioredis client with the driver's Lua scripts as methods. @internal */
export type ScriptedRedis = Redis & ScriptCommands

export class RedisConnection {
  readonly client: ScriptedRedis
  readonly safeUrl: string
  private readonly waiters = new Set<ReadyWaiter>()
  private readonly maxRetryDelayMs: number
  private failFast = false
  private closing = false
  private lastError: Error | undefined
  private downSince: number | undefined

  constructor(private readonly options: RedisConnectionOptions) {
    this.safeUrl = redactUrl(options.url)
    this.maxRetryDelayMs = Math.min(1000, Math.max(50, Math.floor(options.commandTimeoutMs / 10)))
    const redisOptions: RedisOptions = {
      lazyConnect: true,
      enableAutoPipelining: options.autoPipelining,
      stringNumbers: options.stringNumbers,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: options.commandTimeoutMs,
      socketTimeout: options.commandTimeoutMs,
      connectionName: options.name,
      retryStrategy: (attempt) => this.retryDelay(attempt),
      scripts: { ...scripts },
    }
    this.client = new Redis(options.url, redisOptions) as ScriptedRedis
    this.client.on('error', (error: Error) => this.onError(error))
    this.client.on('ready', () => this.onReady())
    this.client.on('close', () => this.onClose())
  }

  /**
   * Opens the connection. `failFast`: one attempt, rejecting with `IpcUnavailableError` if it
   * fails (used by `RedisIpc.create`, so a wrong URL is reported at once instead of retried
   * forever). Otherwise it waits for the connection within `commandTimeoutMs`.
   */
  async connect(failFast: boolean): Promise<void> {
    if (!failFast) {
      this.client.connect().catch(() => {})
      return this.waitReady(Date.now() + this.options.commandTimeoutMs)
    }
    this.failFast = true
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.options.commandTimeoutMs} ms`)),
            this.options.commandTimeoutMs,
          )
        }),
      ])
    } catch (error) {
      this.closing = true
      this.client.disconnect()
      const reason = this.lastError?.message ?? (error as Error).message
      throw new IpcUnavailableError(
        `Cannot connect to Redis at ${this.safeUrl}: ${reason}. Check that Redis runs and that the URL (option 'url' or REDIS_URL) is right.`,
        false,
        { cause: this.lastError ?? error },
      )
    } finally {
      clearTimeout(timer)
      this.failFast = false
    }
  }

  /**
   * Sends a command through `send`, waiting for the connection within `commandTimeoutMs`
   * when there is none. `idempotent`: the command may be sent again after the connection
   * dropped while it was in flight (a second application changes nothing).
   */
  run<T>(send: () => Promise<T>, idempotent: boolean): Promise<T>
  /**
   * The same, then `map` on the reply. One `then` for both (instead of `run(...).then(map)`):
   * on hot paths every promise counts. An error thrown by `map` is passed on as is.
   */
  run<R, T>(send: () => Promise<R>, idempotent: boolean, map: (reply: R) => T | Promise<T>): Promise<T>
  run<R, T>(send: () => Promise<R>, idempotent: boolean, map?: (reply: R) => T | Promise<T>): Promise<R | T> {
    const startedAt = Date.now()
    if (!map) return send().catch((error: unknown) => this.recover(error, send, idempotent, startedAt))
    return send().then(map, (error: unknown) => this.recover(error, send, idempotent, startedAt).then(map))
  }

  private async recover<T>(
    error: unknown,
    send: () => Promise<T>,
    idempotent: boolean,
    startedAt: number,
  ): Promise<T> {
    for (;;) {
      if (this.closing) throw closedError()
      const failure = classifyRedisError(error)
      if (failure.kind === 'reply') throw failure.error
      if (failure.kind === 'lost' && !idempotent) {
        const reason =
          failure.cause.name === 'MaxRetriesPerRequestError' ? 'the socket closed' : failure.cause.message
        throw new IpcUnavailableError(
          `The connection to Redis at ${this.safeUrl} dropped while the command was in flight: it may or may not have been applied (${reason}).`,
          true,
          { cause: failure.cause },
        )
      }
      await this.waitReady(startedAt + this.options.commandTimeoutMs)
      try {
        return await send()
      } catch (next) {
        error = next
      }
    }
  }

  /** Resolves when the connection is ready, or fails with IPC_UNAVAILABLE at `deadline`. */
  private waitReady(deadline: number): Promise<void> {
    if (this.closing) return Promise.reject(closedError())
    const remaining = deadline - Date.now()
    if (remaining <= 0) return Promise.reject(this.unavailable())
    return new Promise<void>((resolve, reject) => {
      const waiter: ReadyWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter)
          reject(this.unavailable())
        }, remaining),
      }
      this.waiters.add(waiter)
      // Ready already (the command failed in the instant between a close and ioredis noticing
      // it): try again on the next turn rather than in a tight loop.
      if (this.client.status === 'ready') setTimeout(() => this.release(waiter), 10)
    })
  }

  private release(waiter: ReadyWaiter): void {
    if (!this.waiters.delete(waiter)) return
    clearTimeout(waiter.timer)
    waiter.resolve()
  }

  private unavailable(): IpcUnavailableError {
    const reason = this.lastError ? `last error: ${this.lastError.message}` : 'no connection'
    return new IpcUnavailableError(
      `Redis at ${this.safeUrl} is unavailable: no connection within commandTimeoutMs (${this.options.commandTimeoutMs} ms), ${reason}. The command was not applied.`,
      false,
      { cause: this.lastError },
    )
  }

  private retryDelay(attempt: number): number | null {
    if (this.failFast || this.closing) return null
    return Math.min(this.maxRetryDelayMs, 50 * 2 ** Math.min(attempt - 1, 10))
  }

  private onError(error: Error): void {
    this.lastError = error
  }

  private onClose(): void {
    if (this.closing || this.failFast || this.downSince !== undefined) return
    this.downSince = Date.now()
    const reason = this.lastError ? ` (${this.lastError.message})` : ''
    this.options.logger.warn(
      `${this.options.name}: lost the connection to Redis at ${this.safeUrl}${reason}; reconnecting, commands wait up to ${this.options.commandTimeoutMs} ms`,
    )
  }

  private onReady(): void {
    if (this.downSince !== undefined) {
      this.options.logger.info(
        `${this.options.name}: reconnected to Redis at ${this.safeUrl} after ${Date.now() - this.downSince} ms`,
      )
      this.downSince = undefined
    }
    this.lastError = undefined
    for (const waiter of [...this.waiters]) this.release(waiter)
  }

  /** Quits (waiting briefly for pending replies), then drops the socket. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer)
      waiter.reject(closedError())
    }
    this.waiters.clear()
    if (this.client.status === 'end' || this.client.status === 'wait') {
      this.client.disconnect()
      return
    }
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.client.quit(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, Math.min(this.options.commandTimeoutMs, 2000))
        }),
      ])
    } catch {
      // Not connected: nothing to quit.
    } finally {
      clearTimeout(timer)
      this.client.disconnect()
    }
  }
}

function closedError(): IpcError {
  return new IpcError('IPC_CLOSED', 'The IPC instance was closed')
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}
