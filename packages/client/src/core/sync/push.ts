import { applyOutcomes } from '../apply-remote.js'
import { TidesyncClientError, type TidesyncServerError } from '../errors.js'
import { nextBatch } from '../outbox.js'
import type { SyncDeps } from './deps.js'
import { refreshRecords } from './refresh.js'

/** What one push run did. */
export interface PushReport {
  /** Changes the server answered for. */
  answered: number
  /** One error per change the server rejected (those changes are dropped and their records restored). */
  rejected: TidesyncServerError[]
}

/** The name of the cross-tab lock that serialises pushes. */
export const PUSH_LOCK = 'push'

/**
 * Pushes the outbox until it is empty. Each batch runs under the cross-tab lock and in the
 * engine's serial queue: read the oldest entries, send them, apply the answers and remove the
 * answered entries in one transaction. A failed request (offline, timeout, server error answer)
 * throws and leaves every entry in place, to be pushed again; the server dedupes by change id,
 * so a push whose answer got lost applies once.
 */
export async function pushOutbox(deps: SyncDeps): Promise<PushReport> {
  const { ctx, transport, queue, lock } = deps
  const report: PushReport = { answered: 0, rejected: [] }
  for (;;) {
    const step = await lock.withLock(PUSH_LOCK, () =>
      queue.run(async () => {
        const batch = await nextBatch(ctx.db, deps.pushBatchSize)
        if (batch.length === 0) return null
        const reply = await transport.request('sync:push', {
          clientId: ctx.clientId,
          changes: batch.map((entry) => entry.change),
        })
        ctx.hlc.observe(reply.serverClock)
        const followUp = await applyOutcomes(ctx, batch, reply.outcomes)
        const answered = reply.outcomes.filter((outcome) =>
          batch.some((entry) => entry.id === outcome.id),
        ).length
        return { followUp, answered }
      }),
    )
    if (!step) return report
    report.answered += step.answered
    report.rejected.push(...step.followUp.errors)
    if (step.followUp.refresh.length) await refreshRecords(deps, step.followUp.refresh)
    if (step.answered === 0) {
      throw new TidesyncClientError(
        'INTERNAL',
        'The server answered a push without an outcome for any change',
      )
    }
  }
}
