import type { PushResult } from '@tidesync/protocol'
import { applyOutcomes, type OutcomeFollowUp } from '../apply-remote.js'
import type { OutboxRow } from '../db/rows.js'
import { TidesyncClientError, TidesyncPushTimeoutError, type TidesyncServerError } from '../errors.js'
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
 * answered entries in one transaction. A failed request (offline, dropped connection, server
 * error answer) throws and leaves every entry in place, to be pushed again; the server dedupes
 * by change id, so a push whose answer got lost applies once.
 *
 * Batches are sized and timed by `deps.pacer` (smaller batches and more time for a slow server).
 * A push that outlives its timeout is NOT abandoned: sending it again while the server still
 * applies the first copy would double the work of a server that is already behind. Instead
 * `deps.onPushTimeout` reports a `TidesyncPushTimeoutError`, the serial queue is released (pulls
 * and live changes go on meanwhile) and the cross-tab lock stays held, so neither this tab nor
 * another one pushes anything until the answer comes (it is then applied like a timely one) or
 * the connection drops (which fails the request: its changes are pushed again after
 * reconnecting). While the queue is released, a pulled or live state that already contains a
 * pushed increment can show it twice until the answer removes it from the pending deltas.
 */
export async function pushOutbox(deps: SyncDeps): Promise<PushReport> {
  const report: PushReport = { answered: 0, rejected: [] }
  for (;;) {
    const step = await deps.lock.withLock(PUSH_LOCK, () => pushBatch(deps))
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

interface BatchResult {
  followUp: OutcomeFollowUp
  answered: number
}

/** A sent batch: answered in time (and applied), or still open after its timeout. */
type Sent = { batch: OutboxRow[]; result: BatchResult } | { batch: OutboxRow[]; answer: Promise<PushResult> }

/** One batch, under the push lock: send it, wait for its answer (however late), apply it. */
async function pushBatch(deps: SyncDeps): Promise<BatchResult | null> {
  const { ctx, transport, queue, pacer } = deps
  const apply = async (batch: OutboxRow[], reply: PushResult): Promise<BatchResult> => {
    ctx.hlc.observe(reply.serverClock)
    const followUp = await applyOutcomes(ctx, batch, reply.outcomes)
    const answered = reply.outcomes.filter((outcome) => batch.some((entry) => entry.id === outcome.id)).length
    return { followUp, answered }
  }
  const sent = await queue.run(async (): Promise<Sent | null> => {
    const batch = await nextBatch(ctx.db, pacer.batchSize)
    if (batch.length === 0) return null
    const timeoutMs = pacer.timeoutFor(batch.length)
    const startedAt = ctx.clock.now()
    let onLate: () => void = () => {}
    const late = new Promise<'late'>((resolve) => {
      onLate = () => resolve('late')
    })
    const answer = transport.request(
      'sync:push',
      { clientId: ctx.clientId, changes: batch.map((entry) => entry.change) },
      {
        timeoutMs,
        onTimeout: () => {
          pacer.record(batch.length, timeoutMs)
          deps.onPushTimeout?.(new TidesyncPushTimeoutError(batch.length, timeoutMs))
          onLate()
        },
      },
    )
    const first = await Promise.race([answer, late])
    if (first === 'late') return { batch, answer }
    pacer.record(batch.length, ctx.clock.now() - startedAt)
    return { batch, result: await apply(batch, first) }
  })
  if (!sent) return null
  if ('result' in sent) return sent.result
  // Late: the queue is free again; the lock stays held until the answer came and was applied.
  const { batch, answer } = sent
  const reply = await answer
  const result = await queue.run(() => apply(batch, reply))
  deps.onLatePushAnswered?.()
  return result
}
