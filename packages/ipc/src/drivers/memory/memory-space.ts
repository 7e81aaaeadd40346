/**
 * What instances of one in-process "deployment" share: the store and the pub/sub bus.
 * `new MemoryIpc()` creates a space; `memoryIpc.createPeer()` joins it, as a second process
 * would join the same Redis. The cluster primary uses one for itself and its workers.
 * Reference-counted: the store's sweep timer stops when the last user leaves.
 * @internal
 */
import { MemoryStore } from './memory-store.js'

/** Receives (channel, payload) for the channels it listens on. */
export type SpaceReceiver = (channel: string, payload: string) => void

export class MemorySpace {
  readonly store = new MemoryStore()
  private users = 0
  private readonly channels = new Map<string, Set<SpaceReceiver>>()

  acquire(): this {
    this.users++
    return this
  }

  /** Returns true when this was the last user (the store is closed). */
  release(): boolean {
    if (--this.users > 0) return false
    this.store.close()
    return true
  }

  subscribe(channel: string, receiver: SpaceReceiver): void {
    let receivers = this.channels.get(channel)
    if (!receivers) {
      receivers = new Set()
      this.channels.set(channel, receivers)
    }
    receivers.add(receiver)
  }

  unsubscribe(channel: string, receiver: SpaceReceiver): void {
    const receivers = this.channels.get(channel)
    if (receivers?.delete(receiver) && receivers.size === 0) this.channels.delete(channel)
  }

  /** Delivers to every receiver of `channel` once, each on its own microtask (never inline). */
  publish(channel: string, payload: string): void {
    const receivers = this.channels.get(channel)
    if (!receivers) return
    for (const receiver of receivers) queueMicrotask(() => receiver(channel, payload))
  }
}
