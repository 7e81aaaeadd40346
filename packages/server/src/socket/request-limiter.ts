import type { WireError } from '@tidesync/protocol'
import { TidesyncConfigError } from '../errors.js'

/** How many requests of one socket are handled at once and how many may wait. */
export interface RequestLimitOptions {
  /**
   * Requests of one socket handled at once (`service`, `sync:full`, `sync:pull`, `sync:push`).
   * The rest wait in the socket's queue, in the order they arrived.
   * @default 8
   */
  maxConcurrentRequestsPerSocket?: number
  /**
   * Requests of one socket that may wait for a free slot. A request past it is answered at once
   * with `TOO_MANY_REQUESTS` (retryable), which counts as a violation. `0`: no queue.
   * @default 64
   */
  maxQueuedRequestsPerSocket?: number
}

/** The limits with their defaults applied. @internal */
export interface RequestLimits {
  maxConcurrent: number
  maxQueued: number
}

/** Running and queued requests, summed over every socket of a server. @internal */
export interface RequestGauge {
  running: number
  queued: number
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/** Applies the defaults; throws `TidesyncConfigError` for a value that is not a whole number in range. @internal */
export function resolveRequestLimits(options: RequestLimitOptions): RequestLimits {
  const concurrent = options.maxConcurrentRequestsPerSocket ?? 8
  const queued = options.maxQueuedRequestsPerSocket ?? 64
  if (!Number.isSafeInteger(concurrent) || concurrent < 1)
    throw new TidesyncConfigError(
      `maxConcurrentRequestsPerSocket must be a whole number >= 1, got ${describe(concurrent)}`,
    )
  if (!Number.isSafeInteger(queued) || queued < 0)
    throw new TidesyncConfigError(
      `maxQueuedRequestsPerSocket must be a whole number >= 0, got ${describe(queued)}`,
    )
  return { maxConcurrent: concurrent, maxQueued: queued }
}

/** The answer to a request past the socket's queue. */
export function tooManyRequests(limits: RequestLimits): WireError {
  return {
    code: 'TOO_MANY_REQUESTS',
    message: `more than ${limits.maxConcurrent + limits.maxQueued} requests in flight on this socket (${limits.maxConcurrent} handled at once, ${limits.maxQueued} waiting): wait for answers before sending more`,
    retryable: true,
  }
}

/**
 * One socket's requests: at most `maxConcurrent` run at once, up to `maxQueued` more wait in
 * FIFO order, the rest are refused. A socket therefore never holds more than
 * `maxConcurrent + maxQueued` requests (and their payloads) in the server, whatever it sends.
 * `close()` (the socket is gone) drops what waits: it never runs.
 */
export class RequestLimiter {
  private running = 0
  private readonly queue: Array<() => Promise<void>> = []
  private closed = false

  constructor(
    private readonly limits: RequestLimits,
    private readonly gauge: RequestGauge,
  ) {}

  /**
   * Runs `task` now if a slot is free, else queues it. False when the queue is full or the
   * limiter is closed: the task will never run, answer the request yourself. `task` must not
   * throw (a rejection is ignored).
   */
  submit(task: () => Promise<void>): boolean {
    if (this.closed) return false
    if (this.running < this.limits.maxConcurrent) {
      this.start(task)
      return true
    }
    if (this.queue.length >= this.limits.maxQueued) return false
    this.queue.push(task)
    this.gauge.queued++
    return true
  }

  /** Drops every queued task (they never run); running ones finish. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.gauge.queued -= this.queue.length
    this.queue.length = 0
  }

  private start(task: () => Promise<void>): void {
    this.running++
    this.gauge.running++
    const done = () => {
      this.running--
      this.gauge.running--
      const next = this.closed ? undefined : this.queue.shift()
      if (next) {
        this.gauge.queued--
        this.start(next)
      }
    }
    let pending: Promise<void>
    try {
      pending = task()
    } catch {
      pending = Promise.resolve()
    }
    pending.then(done, done)
  }
}
