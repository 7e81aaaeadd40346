/**
 * A worker's connection to the primary, shared by every `ClusterIpc` in the worker process
 * (reference-counted).
 *
 * Coalescing: requests are queued and sent on `setImmediate`, i.e. every request made while the
 * current tick's microtasks run leaves in ONE `process.send` (an array). Why not a microtask:
 * callers resumed by the previous batch of replies continue over several microtasks, and a
 * microtask flush would send before most of them had queued their next request.
 *
 * Timeouts: a request that gets no answer within its bound fails with `IpcUnavailableError`
 * (`outcomeUnknown: true`: the primary may have applied it) and is never sent again; a late
 * answer is ignored. One interval timer checks deadlines (no timer per request).
 * @internal
 */
import { IpcError, IpcUnavailableError } from '../../errors.js'
import type { Logger } from '../../types.js'
import {
  ERROR_CODES,
  isTagged,
  MARK,
  PROTOCOL_VERSION,
  type PrimaryItem,
  type WorkerEnvelope,
  type WorkerRequest,
} from './protocol.js'

/** Where the link hands pub/sub messages: one per worker-side instance. */
export type WorkerReceiver = (channel: string, payload: string) => void

interface Pending {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  deadline: number
}

/** A request before the link numbers it. */
export type UnnumberedRequest = WorkerRequest extends infer R
  ? R extends WorkerRequest
    ? Omit<R, 'id'>
    : never
  : never

let shared: WorkerLink | undefined

export class WorkerLink {
  private users = 0
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private queue: WorkerRequest[] = []
  private flushScheduled = false
  private checker: NodeJS.Timeout | undefined
  private checkEveryMs = 250
  private disconnected = false
  private readonly receivers = new Map<string, Set<WorkerReceiver>>()
  private readonly onMessage = (message: unknown) => this.receive(message)
  private readonly onDisconnect = () => this.failAll('The cluster primary went away')

  private constructor(private readonly logger: Logger) {
    process.on('message', this.onMessage)
    process.on('disconnect', this.onDisconnect)
  }

  /** The process's link, created on first use. Pair every call with `release()`. */
  static acquire(logger: Logger, timeoutMs: number): WorkerLink {
    if (typeof process.send !== 'function') {
      throw new IpcError('IPC_UNAVAILABLE', 'This cluster worker has no IPC channel to the primary')
    }
    shared ??= new WorkerLink(logger)
    shared.users++
    // Check deadlines often enough for the shortest timeout in use.
    shared.checkEveryMs = Math.min(shared.checkEveryMs, Math.max(1, Math.floor(timeoutMs / 10)))
    return shared
  }

  release(): void {
    if (--this.users > 0) return
    this.flush()
    process.off('message', this.onMessage)
    process.off('disconnect', this.onDisconnect)
    clearInterval(this.checker)
    this.checker = undefined
    this.failAll('The cluster IPC link was closed')
    if (shared === this) shared = undefined
  }

  /** Sends a request (in the next batch) and resolves with the primary's answer. */
  request(body: UnnumberedRequest, timeoutMs: number): Promise<unknown> {
    if (this.disconnected || !process.connected) {
      return Promise.reject(new IpcUnavailableError('The cluster primary is not reachable', false))
    }
    const id = this.nextId++
    const request = body as WorkerRequest
    request.id = id
    this.queue.push(request)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
    this.startChecker()
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + timeoutMs })
    })
  }

  addReceiver(channel: string, receiver: WorkerReceiver): void {
    let receivers = this.receivers.get(channel)
    if (!receivers) {
      receivers = new Set()
      this.receivers.set(channel, receivers)
    }
    receivers.add(receiver)
  }

  removeReceiver(channel: string, receiver: WorkerReceiver): void {
    const receivers = this.receivers.get(channel)
    if (receivers?.delete(receiver) && receivers.size === 0) this.receivers.delete(channel)
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.queue.length === 0) return
    const requests = this.queue
    this.queue = []
    const envelope: WorkerEnvelope = { [MARK]: PROTOCOL_VERSION, type: 'requests', requests }
    const fail = (error: unknown) => {
      // Not written to the channel: the primary never saw these requests.
      for (const request of requests) {
        this.settle(request.id)?.reject(
          new IpcUnavailableError('Could not send the request to the cluster primary', false, {
            cause: error,
          }),
        )
      }
    }
    try {
      process.send!(envelope, undefined, undefined, (error: Error | null) => {
        if (error) fail(error)
      })
    } catch (error) {
      fail(error)
    }
  }

  private receive(message: unknown): void {
    if (!isTagged(message)) return
    if (message.type !== 'replies' || !Array.isArray(message.items)) {
      this.logger.warn('Dropped a malformed message from the cluster primary', message)
      return
    }
    for (const item of message.items as PrimaryItem[]) {
      switch (item?.type) {
        case 'ok':
          this.settle(item.id)?.resolve(item.value)
          break
        case 'error': {
          const code = ERROR_CODES.has(item.code) ? item.code : 'IPC_PROTOCOL'
          this.settle(item.id)?.reject(new IpcError(code, String(item.message)))
          break
        }
        case 'message': {
          const receivers = this.receivers.get(item.channel)
          if (receivers) for (const receiver of [...receivers]) receiver(item.channel, item.payload)
          break
        }
        default:
          this.logger.warn('Dropped a malformed item from the cluster primary', item)
      }
    }
  }

  /** Removes and returns the pending request `id` (undefined when it timed out already). */
  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id)
    if (pending) this.pending.delete(id)
    return pending
  }

  private startChecker(): void {
    if (this.checker) return
    this.checker = setInterval(() => this.checkDeadlines(), this.checkEveryMs)
    this.checker.unref()
  }

  private checkDeadlines(): void {
    const now = Date.now()
    for (const [id, pending] of this.pending) {
      if (pending.deadline > now) continue
      this.pending.delete(id)
      pending.reject(
        new IpcUnavailableError(
          'The cluster primary did not answer in time; the operation may or may not have been applied',
          true,
        ),
      )
    }
    if (this.pending.size === 0) {
      clearInterval(this.checker)
      this.checker = undefined
    }
  }

  private failAll(reason: string): void {
    this.disconnected = this.disconnected || !process.connected
    const unsent = new Set(this.queue.map((request) => request.id))
    this.queue = []
    for (const [id, pending] of this.pending) {
      pending.reject(
        new IpcUnavailableError(`${reason}; the operation's outcome is unknown`, !unsent.has(id)),
      )
    }
    this.pending.clear()
  }
}
