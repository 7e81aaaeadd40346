/**
 * The local half of pub/sub, shared by every driver through `BaseIpc`: the handlers of one
 * instance by channel, one driver-level subscription per channel however many handlers it has,
 * and fan-out of each incoming message to each handler exactly once.
 *
 * Driver subscription changes for one channel are chained, so `subscribe`/`unsubscribe` reach
 * the driver in call order even when they overlap (subscribe, unsubscribe, subscribe again).
 * @internal
 */
import type { Json, Logger, MessageHandler, Unsubscribe } from './types.js'

/** A value or a promise of it: memory primitives answer synchronously, remote ones later. */
export type Awaitable<T> = T | Promise<T>

export interface SubscriptionDriver {
  /** The first local handler of `channel` arrived: resolve once the subscription is live. */
  subscribe(channel: string): Awaitable<void>
  /** The last local handler of `channel` left. */
  unsubscribe(channel: string): Awaitable<void>
  /** False once the instance is closed (no more driver calls then). */
  isOpen(): boolean
}

interface Subscription {
  readonly handler: MessageHandler
  active: boolean
}

export class LocalSubscriptions {
  private readonly channels = new Map<string, Set<Subscription>>()
  private readonly pending = new Map<string, Promise<void>>()

  constructor(
    private readonly driver: SubscriptionDriver,
    private readonly logger: Logger,
  ) {}

  has(channel: string): boolean {
    return this.channels.has(channel)
  }

  list(): string[] {
    return [...this.channels.keys()]
  }

  /** Adds a handler; resolves once the channel's driver subscription is live. */
  async add(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    const subscription: Subscription = { handler, active: true }
    let subscriptions = this.channels.get(channel)
    const first = subscriptions === undefined
    if (!subscriptions) {
      subscriptions = new Set()
      this.channels.set(channel, subscriptions)
    }
    subscriptions.add(subscription)
    try {
      // Every subscriber waits for the channel's driver subscription, so a publish made after
      // `subscribe` resolves always reaches it.
      await this.chain(channel, first ? () => this.driver.subscribe(channel) : undefined)
    } catch (error) {
      this.remove(channel, subscription, false)
      throw error
    }
    return async () => {
      if (!subscription.active) return
      this.remove(channel, subscription, true)
      await this.pending.get(channel)?.catch(() => {})
    }
  }

  /**
   * Hands an incoming message to every local handler of `channel`, each exactly once and each
   * with its own parsed copy. A handler that throws (or rejects) is logged; the others still run.
   */
  deliver(channel: string, payload: string): void {
    const subscriptions = this.channels.get(channel)
    if (!subscriptions) return
    for (const subscription of [...subscriptions]) {
      if (!subscription.active) continue
      let message: Json
      try {
        message = JSON.parse(payload) as Json
      } catch (error) {
        this.logger.warn(`Dropped a malformed message on channel ${JSON.stringify(channel)}`, error)
        return
      }
      try {
        const result: unknown = subscription.handler(message, channel)
        if (result instanceof Promise) {
          result.catch((error: unknown) => this.logger.error(`A subscriber of ${channel} failed`, error))
        }
      } catch (error) {
        this.logger.error(`A subscriber of ${channel} failed`, error)
      }
    }
  }

  /** Stops every delivery at once (on close); `list()` keeps answering until `clear()`. */
  deactivateAll(): void {
    for (const subscriptions of this.channels.values()) {
      for (const subscription of subscriptions) subscription.active = false
    }
  }

  clear(): void {
    this.channels.clear()
  }

  private remove(channel: string, subscription: Subscription, unsubscribeDriver: boolean): void {
    subscription.active = false
    const subscriptions = this.channels.get(channel)
    if (!subscriptions?.delete(subscription) || subscriptions.size > 0) return
    this.channels.delete(channel)
    if (unsubscribeDriver && this.driver.isOpen()) {
      this.chain(channel, () => this.driver.unsubscribe(channel)).catch((error: unknown) =>
        this.logger.warn(`Could not unsubscribe from ${JSON.stringify(channel)}`, error),
      )
    }
  }

  /** Chains a driver subscription change after the previous one for the same channel. */
  private chain(channel: string, op: (() => Awaitable<void>) | undefined): Promise<void> {
    const previous = this.pending.get(channel) ?? Promise.resolve()
    if (!op) return previous
    const next = previous.catch(() => {}).then(op)
    this.pending.set(channel, next)
    const cleanup = () => {
      if (this.pending.get(channel) === next) this.pending.delete(channel)
    }
    next.then(cleanup, cleanup)
    return next
  }
}
