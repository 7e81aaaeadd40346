import type { Ipc, Json } from '@tidesync/ipc'
import type { LiveMessage, Logger } from '@tidesync/protocol'
import { metaToWire } from '../wire/serialize.js'
import type { CommittedChange } from '../write/staged-change.js'
import { channelFor } from './messages.js'

/**
 * Publishes committed changes on `<keyPrefix>changes:<model>`. A failure is logged, never
 * thrown: the change is committed, and clients that miss the live push get it from their next
 * pull (the change log has it).
 */
export function createPublisher(ipc: Ipc, keyPrefix: string, logger: Logger) {
  return async function publish(changes: CommittedChange[]): Promise<void> {
    const byModel = new Map<string, CommittedChange[]>()
    for (const change of changes) {
      const list = byModel.get(change.model) ?? []
      list.push(change)
      byModel.set(change.model, list)
    }
    for (const [model, list] of byModel) {
      const message: LiveMessage = {
        v: 1,
        model,
        changes: list.map((c) => ({
          uid: c.uid,
          op: c.op,
          before: c.before,
          after: c.after,
          meta: metaToWire(c.meta),
        })),
      }
      try {
        await ipc.publish(channelFor(keyPrefix, model), message as unknown as Json)
      } catch (error) {
        logger.error(
          `live publish of ${list.length} ${model} change(s) failed; clients will get them on their next pull`,
          error,
        )
      }
    }
  }
}
