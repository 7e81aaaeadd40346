import { BaseIpc } from '../../base-ipc.js'
import type { CommandArgs, CommandName, CommandResult } from '../../commands.js'
import type { MemoryIpcOptions } from '../../types.js'
import { MemorySpace } from './memory-space.js'
import type { MemoryStore } from './memory-store.js'

/**
 * The memory driver: one process, one `MemoryStore`. Every command runs synchronously on the
 * store (hence atomically); pub/sub is delivered on a microtask, so `publish` never runs
 * handlers inside the caller's stack. Two `new MemoryIpc()` do not share data; `createPeer()`
 * gives another instance on the same store and bus (its own locks and subscriptions).
 *
 * @example
 * const ipc = new MemoryIpc({ driver: 'memory' })
 * await ipc.incrBy('views:42', 1)
 */
export class MemoryIpc extends BaseIpc {
  readonly driver = 'memory' as const
  private readonly store: MemoryStore
  private readonly space: MemorySpace
  private readonly receiver = (channel: string, payload: string) => this.deliver(channel, payload)

  constructor(
    private readonly options: MemoryIpcOptions = { driver: 'memory' },
    /** @internal another instance's space, see `createPeer` */
    space?: MemorySpace,
  ) {
    super(options)
    this.space = (space ?? new MemorySpace()).acquire()
    this.store = this.space.store
  }

  /**
   * Another instance on the same store and pub/sub bus, with its own lock ownership and
   * subscriptions: what a second process on the same Redis would be. Closing one instance
   * leaves the others working.
   */
  createPeer(): MemoryIpc {
    this.assertOpen()
    return new MemoryIpc(this.options, this.space)
  }

  /** Every command runs synchronously on the store, hence atomically. */
  protected exec<K extends CommandName>(name: K, args: CommandArgs<K>): CommandResult<K> {
    return this.store.exec(name, args)
  }

  protected doSubscribe(channel: string): void {
    this.space.subscribe(channel, this.receiver)
  }
  protected doUnsubscribe(channel: string): void {
    this.space.unsubscribe(channel, this.receiver)
  }
  protected doPublish(channel: string, payload: string): void {
    this.space.publish(channel, payload)
  }
  protected doClose(): void {
    for (const channel of this.subscribedChannels()) this.space.unsubscribe(channel, this.receiver)
    this.space.release()
  }
}
