/**
 * The primary's side of the cluster driver: it owns the one `MemoryStore` of the cluster,
 * answers every worker's requests (current and future workers: it listens on `cluster`, not on
 * individual workers), and fans pub/sub out to subscribed workers and to subscribers in the
 * primary itself.
 *
 * Untrusted input: every tagged message is checked before anything runs. A request that can be
 * identified (it has an id) but is malformed gets an `IPC_PROTOCOL` (or validation) error
 * answer; anything else is logged and dropped. Nothing a worker sends can throw out of here.
 *
 * One hub per process, shared by every primary-side `ClusterIpc` (reference-counted), because
 * workers talk to "the primary", not to one instance.
 * @internal
 */
import cluster, { type Worker } from 'node:cluster'
import { isCommandName, validateCommand } from '../../commands.js'
import { IpcError } from '../../errors.js'
import type { Logger } from '../../types.js'
import { validateChannel } from '../../validate.js'
import { MemorySpace, type SpaceReceiver } from '../memory/memory-space.js'
import type { MemoryStore } from '../memory/memory-store.js'
import { isTagged, MARK, PROTOCOL_VERSION, type PrimaryEnvelope, type PrimaryItem } from './protocol.js'

let shared: PrimaryHub | undefined

export class PrimaryHub {
  /** The store and the primary's own pub/sub bus. */
  private readonly space = new MemorySpace().acquire()
  readonly store: MemoryStore = this.space.store
  private users = 0
  /** channel -> worker id -> number of subscriptions that worker holds. */
  private readonly workerChannels = new Map<string, Map<number, number>>()
  /** worker id -> lock key -> owner token, so locks of a dead worker are released at once. */
  private readonly workerLocks = new Map<number, Map<string, string>>()
  private readonly outboxes = new Map<number, PrimaryItem[]>()
  private flushScheduled = false
  private readonly onMessage = (worker: Worker, message: unknown) => this.receive(worker, message)
  private readonly onExit = (worker: Worker) => this.forget(worker.id)

  private constructor(private readonly logger: Logger) {
    cluster.on('message', this.onMessage)
    cluster.on('exit', this.onExit)
  }

  /** The process's hub, created on first use. Pair every call with `release()`. */
  static acquire(logger: Logger): PrimaryHub {
    shared ??= new PrimaryHub(logger)
    shared.users++
    return shared
  }

  /** When the last primary-side instance closes, the hub stops listening and its store goes. */
  release(): void {
    if (--this.users > 0) return
    cluster.off('message', this.onMessage)
    cluster.off('exit', this.onExit)
    this.flush()
    this.space.release()
    if (shared === this) shared = undefined
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  subscribeLocal(channel: string, receiver: SpaceReceiver): void {
    this.space.subscribe(channel, receiver)
  }

  unsubscribeLocal(channel: string, receiver: SpaceReceiver): void {
    this.space.unsubscribe(channel, receiver)
  }

  /** Sends `payload` once to every subscribed worker and every primary-side receiver. */
  publish(channel: string, payload: string): void {
    this.space.publish(channel, payload)
    const workers = this.workerChannels.get(channel)
    if (workers) {
      for (const workerId of workers.keys()) this.enqueue(workerId, { type: 'message', channel, payload })
    }
    this.scheduleFlush()
  }

  // ---- worker messages ---------------------------------------------------------------------

  private receive(worker: Worker, message: unknown): void {
    if (!isTagged(message)) return // someone else's message
    try {
      if (
        message[MARK] !== PROTOCOL_VERSION ||
        message.type !== 'requests' ||
        !Array.isArray(message.requests)
      ) {
        this.logger.warn(`Dropped a malformed IPC message from worker ${worker.id}`, message)
        return
      }
      for (const request of message.requests as unknown[]) this.handle(worker.id, request)
    } catch (error) {
      this.logger.error(`Failed to handle an IPC message from worker ${worker.id}`, error)
    }
    // Answer the whole batch at once (and deliver what its publishes produced).
    this.flush()
  }

  private handle(workerId: number, request: unknown): void {
    if (typeof request !== 'object' || request === null) {
      this.logger.warn(`Dropped a malformed IPC request from worker ${workerId}`, request)
      return
    }
    const { id, type } = request as Record<string, unknown>
    if (!Number.isSafeInteger(id)) {
      this.logger.warn(`Dropped an IPC request without a valid id from worker ${workerId}`, request)
      return
    }
    const requestId = id as number
    try {
      const value = this.run(workerId, type, request as Record<string, unknown>)
      this.enqueue(
        workerId,
        value === undefined ? { type: 'ok', id: requestId } : { type: 'ok', id: requestId, value },
      )
    } catch (error) {
      const known = error instanceof IpcError
      if (!known) this.logger.error(`An IPC request from worker ${workerId} failed`, error)
      this.enqueue(workerId, {
        type: 'error',
        id: requestId,
        code: known ? error.code : 'IPC_PROTOCOL',
        message: known ? error.message : `The primary failed to run the request: ${String(error)}`,
      })
    }
  }

  private run(workerId: number, type: unknown, request: Record<string, unknown>): unknown {
    switch (type) {
      case 'command': {
        const { name, args } = request
        if (!isCommandName(name)) throw protocolError(`unknown command ${JSON.stringify(name)}`)
        if (!Array.isArray(args)) throw protocolError('command args must be an array')
        validateCommand(name, args)
        const result = this.store.exec(name, args as never)
        if (name === 'lock' || name === 'unlock' || name === 'extendLock') {
          this.trackLock(workerId, name, args[0] as string, args[1] as string, result as boolean)
        }
        return result
      }
      case 'subscribe':
      case 'unsubscribe': {
        validateChannel(request.channel)
        this.changeSubscription(workerId, request.channel, type === 'subscribe' ? 1 : -1)
        return undefined
      }
      case 'publish': {
        const { channel, payload } = request
        validateChannel(channel)
        if (typeof payload !== 'string') throw protocolError('publish payload must be a JSON string')
        try {
          JSON.parse(payload)
        } catch {
          throw protocolError('publish payload is not valid JSON')
        }
        this.publish(channel, payload)
        return undefined
      }
      default:
        throw protocolError(`unknown request type ${JSON.stringify(type)}`)
    }
  }

  private changeSubscription(workerId: number, channel: string, delta: 1 | -1): void {
    let workers = this.workerChannels.get(channel)
    if (!workers) {
      if (delta < 0) return
      workers = new Map()
      this.workerChannels.set(channel, workers)
    }
    const count = (workers.get(workerId) ?? 0) + delta
    if (count > 0) workers.set(workerId, count)
    else workers.delete(workerId)
    if (workers.size === 0) this.workerChannels.delete(channel)
  }

  private trackLock(workerId: number, name: string, key: string, token: string, ok: boolean): void {
    let locks = this.workerLocks.get(workerId)
    if (name === 'lock' && ok) {
      if (!locks) {
        locks = new Map()
        this.workerLocks.set(workerId, locks)
      }
      locks.set(key, token)
      // Locks left to expire are never unlocked: drop records whose lock is gone, now and then.
      if (locks.size % 1024 === 0) {
        for (const [held, owner] of locks) if (this.store.lockOwner(held) !== owner) locks.delete(held)
      }
    } else if (locks && (name === 'unlock' || !ok) && locks.get(key) === token) {
      locks.delete(key)
    }
  }

  /** A worker exited: release its locks (their TTL would too, later) and its subscriptions. */
  private forget(workerId: number): void {
    const locks = this.workerLocks.get(workerId)
    if (locks) {
      for (const [key, token] of locks) this.store.exec('unlock', [key, token])
      this.workerLocks.delete(workerId)
    }
    for (const [channel, workers] of this.workerChannels) {
      if (workers.delete(workerId) && workers.size === 0) this.workerChannels.delete(channel)
    }
    this.outboxes.delete(workerId)
  }

  // ---- outgoing batches --------------------------------------------------------------------

  private enqueue(workerId: number, item: PrimaryItem): void {
    const outbox = this.outboxes.get(workerId)
    if (outbox) outbox.push(item)
    else this.outboxes.set(workerId, [item])
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  private flush(): void {
    if (this.outboxes.size === 0) return
    for (const [workerId, items] of this.outboxes) {
      const worker = cluster.workers?.[workerId]
      if (!worker?.isConnected()) continue
      const envelope: PrimaryEnvelope = { [MARK]: PROTOCOL_VERSION, type: 'replies', items }
      worker.send(envelope, undefined, (error: Error | null) => {
        if (error) this.logger.warn(`Could not answer worker ${workerId} (it is going away?)`, error)
      })
    }
    this.outboxes.clear()
  }
}

function protocolError(message: string): IpcError {
  return new IpcError('IPC_PROTOCOL', `Malformed IPC request: ${message}`)
}
