import type { Ipc, Unsubscribe } from '@tidesync/ipc'
import { type HybridClock, isLiveMessage, type LiveChange, type Logger } from '@tidesync/protocol'
import { channelFor } from './messages.js'
import { pushFor, type SubscriptionRegistry } from './subscriptions.js'

/**
 * Listens to every model's change channel and pushes each message to this server's matching
 * subscriptions. Returns a function that stops listening.
 */
export async function startFanout(
  ipc: Ipc,
  keyPrefix: string,
  models: Iterable<string>,
  registry: SubscriptionRegistry,
  hlc: HybridClock,
  logger: Logger,
): Promise<() => Promise<void>> {
  const unsubscribes: Unsubscribe[] = []
  for (const model of models) {
    const unsubscribe = await ipc.subscribe(channelFor(keyPrefix, model), (message) => {
      if (!isLiveMessage(message)) {
        logger.warn(`ignored a malformed live message on ${model}`)
        return
      }
      observeClocks(hlc, message.changes)
      for (const subscription of registry.forModel(message.model)) {
        try {
          const push = pushFor(subscription, message.changes)
          if (push) subscription.send({ ...push, serverClock: hlc.now() })
        } catch (error) {
          logger.error(`live push to subscription ${subscription.id} failed`, error)
        }
      }
    })
    unsubscribes.push(unsubscribe)
  }
  return async () => {
    await Promise.all(unsubscribes.map((u) => u()))
  }
}

/**
 * Moves this server's clock past the newest clock a message carries (within the clock's skew
 * bound), so that a write this server makes after it saw a change is newer than that change.
 * Clocks of captured writes are made by the database (node `sql`), not by any server: without
 * this, a service update made in the same millisecond as a SQL update could lose to it.
 */
function observeClocks(hlc: HybridClock, changes: LiveChange[]): void {
  let newest = ''
  for (const change of changes) {
    for (const clock of Object.values(change.meta.clocks)) if (clock > newest) newest = clock
  }
  if (!newest) return
  try {
    hlc.receive(newest)
  } catch {
    // A malformed clock in a message: nothing to move past.
  }
}
