import type { Ipc, Json } from '@tidesync/ipc'
import type { LiveChange, LiveMessage, Logger } from '@tidesync/protocol'
import { channelFor } from './messages.js'

/**
 * Publishes committed changes of one model, already in their wire form (the same objects the
 * push acknowledges), on `<keyPrefix>changes:<model>`. A failure is logged, never thrown: the
 * change is committed, and clients that miss the live push get it from their next pull (the
 * change log has it).
 */
export function createPublisher(ipc: Ipc, keyPrefix: string, logger: Logger) {
  return async function publish(model: string, changes: LiveChange[]): Promise<void> {
    const message: LiveMessage = { v: 1, model, changes }
    try {
      await ipc.publish(channelFor(keyPrefix, model), message as unknown as Json)
    } catch (error) {
      logger.error(
        `live publish of ${changes.length} ${model} change(s) failed; clients will get them on their next pull`,
        error,
      )
    }
  }
}
