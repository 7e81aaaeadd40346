import cluster from 'node:cluster'
import { type Awaitable, BaseIpc } from '../../base-ipc.js'
import type { CommandArgs, CommandName, CommandResult } from '../../commands.js'
import type { ClusterIpcOptions } from '../../types.js'
import { PrimaryHub } from './primary-hub.js'
import type { UnnumberedRequest } from './worker-link.js'
import { WorkerLink } from './worker-link.js'

/**
 * The cluster driver (node:cluster). The primary owns the only store; workers forward every
 * operation to it, so a worker that dies loses nothing the primary acknowledged.
 *
 * - In the primary, `create` attaches to the process's `PrimaryHub` (which answers every current
 *   and future worker) and runs operations directly on its store.
 * - In a worker, operations travel to the primary in coalesced batches and are answered by
 *   request id. A request without an answer within `requestTimeoutMs` fails with
 *   `IpcUnavailableError` (`outcomeUnknown: true`) and is never re-sent.
 * - Pub/sub: the primary sends each message once to every subscribed worker and to its own
 *   subscribers; each process fans it out to its local handlers.
 *
 * The primary must create its instance before workers send requests (create it before forking).
 *
 * @example
 * // in both primary and workers:
 * const ipc = await ClusterIpc.create({ driver: 'cluster' })
 * await ipc.incrBy('visits', 1)
 */
export class ClusterIpc extends BaseIpc {
  readonly driver = 'cluster' as const
  /** Which side of the cluster this instance runs on. */
  readonly role: 'primary' | 'worker'
  private readonly hub: PrimaryHub | undefined
  private readonly link: WorkerLink | undefined
  private readonly timeoutMs: number
  private inFlight = 0
  private drained: (() => void) | undefined
  private readonly receiver = (channel: string, payload: string) => this.deliver(channel, payload)

  private constructor(options: ClusterIpcOptions) {
    super(options)
    this.timeoutMs = options.requestTimeoutMs ?? 10_000
    if (cluster.isPrimary) {
      this.role = 'primary'
      this.hub = PrimaryHub.acquire(this.logger)
    } else {
      this.role = 'worker'
      this.link = WorkerLink.acquire(this.logger, this.timeoutMs)
    }
  }

  /** Creates an instance for this process's side of the cluster. */
  static async create(options: ClusterIpcOptions = { driver: 'cluster' }): Promise<ClusterIpc> {
    return new ClusterIpc(options)
  }

  // ---- commands ----------------------------------------------------------------------------

  /** In the primary, on the store directly; in a worker, as `{ type: 'command', name, args }`. */
  protected exec<K extends CommandName>(name: K, args: CommandArgs<K>): Awaitable<CommandResult<K>> {
    if (this.hub) return this.hub.store.exec(name, args)
    return this.send({ type: 'command', name, args }) as Promise<CommandResult<K>>
  }

  private send(request: UnnumberedRequest): Promise<unknown> {
    this.inFlight++
    return this.link!.request(request, this.timeoutMs).finally(() => {
      if (--this.inFlight === 0) this.drained?.()
    })
  }

  // ---- pub/sub, lifecycle --------------------------------------------------------------------

  protected async doSubscribe(channel: string): Promise<void> {
    if (this.hub) {
      this.hub.subscribeLocal(channel, this.receiver)
      return
    }
    // Listen before the primary knows, so nothing published after the answer is missed.
    this.link!.addReceiver(channel, this.receiver)
    try {
      await this.send({ type: 'subscribe', channel })
    } catch (error) {
      this.link!.removeReceiver(channel, this.receiver)
      throw error
    }
  }

  protected async doUnsubscribe(channel: string): Promise<void> {
    if (this.hub) {
      this.hub.unsubscribeLocal(channel, this.receiver)
      return
    }
    this.link!.removeReceiver(channel, this.receiver)
    await this.send({ type: 'unsubscribe', channel })
  }

  protected async doPublish(channel: string, payload: string): Promise<void> {
    if (this.hub) this.hub.publish(channel, payload)
    else await this.send({ type: 'publish', channel, payload })
  }

  /** Waits for this instance's requests in flight (each bounded by its timeout), then detaches. */
  protected async doClose(): Promise<void> {
    if (this.hub) {
      for (const channel of this.subscribedChannels()) this.hub.unsubscribeLocal(channel, this.receiver)
      this.hub.release()
      return
    }
    const link = this.link!
    const channels = this.subscribedChannels()
    for (const channel of channels) {
      link.removeReceiver(channel, this.receiver)
      this.send({ type: 'unsubscribe', channel }).catch(() => {})
    }
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve))
    link.release()
  }
}
