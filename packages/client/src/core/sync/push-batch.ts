import type { PushResult } from '@tidesync/protocol'
import { applyOutcomes, type OutcomeFollowUp } from '../apply-remote.js'
import type { OutboxRow } from '../db/rows.js'
import { TidesyncPushTimeoutError } from '../errors.js'
import { nextBatch, wireChange } from '../outbox.js'
import type { SyncDeps } from './deps.js'
import type { PushPacer } from './push-pacer.js'

/** What one pushed batch came to. */
export interface BatchResult {
  followUp: OutcomeFollowUp
  /** Changes of the batch the server answered for. */
  answered: number
  /** The batch was as large as allowed: more entries may be waiting behind it. */
  full: boolean
  /** The outbox position (`seq`) of the batch's newest entry. */
  lastSeq: number
}

/** Told about a push that outlives its timeout. */
export interface LateHooks {
  /** The push outlived its timeout; it stays open. */
  late(error: TidesyncPushTimeoutError): void
  /** Its answer came after all and was applied. */
  answered(): void
}

/** A sent batch: answered in time (and applied), or still open after its timeout. */
type Sent = { batch: OutboxRow[]; full: boolean } & (
  | { result: BatchResult }
  | { answer: Promise<PushResult> }
)

/**
 * Pushes one batch (the caller holds the cross-tab push lock): in the serial queue, read the
 * oldest entries, send them and apply the answer, which removes the answered entries in the same
 * transaction. Null when the outbox is empty. A failed request (offline, dropped connection,
 * server error answer) throws and leaves every entry in place, to be pushed again; the server
 * dedupes by change id, so a push whose answer got lost applies once.
 *
 * The batch is sized and timed by `pacer`. A push that outlives its timeout is NOT abandoned:
 * sending it again while the server still applies the first copy would double the work of a
 * server that is already behind. `hooks.late` is told, the serial queue is released (pulls and
 * live changes go on meanwhile; a pulled or live state that already holds a pushed increment can
 * then show it twice until the answer removes it from the pending deltas) and this call goes on
 * waiting, so the caller's lock stays held until the answer came and was applied like a timely
 * one, or the connection dropped (which fails the request: its changes are pushed again after
 * reconnecting).
 */
export async function pushBatch(
  deps: SyncDeps,
  pacer: PushPacer,
  hooks: LateHooks,
): Promise<BatchResult | null> {
  const { ctx, transport, queue } = deps
  const apply = async (batch: OutboxRow[], reply: PushResult, full: boolean): Promise<BatchResult> => {
    ctx.hlc.observe(reply.serverClock)
    const followUp = await applyOutcomes(ctx, batch, reply.outcomes)
    for (const { model, uid, rev } of followUp.stored) deps.ownRevisions.stored(model, uid, rev)
    const answered = reply.outcomes.filter((outcome) => batch.some((entry) => entry.id === outcome.id)).length
    return { followUp, answered, full, lastSeq: batch.at(-1)?.seq ?? 0 }
  }
  const sent = await queue.run(async (): Promise<Sent | null> => {
    const limit = pacer.batchSize
    const batch = await nextBatch(ctx.db, limit)
    if (batch.length === 0) return null
    const full = batch.length >= limit
    const timeoutMs = pacer.timeoutFor(batch.length)
    const startedAt = ctx.clock.now()
    let onLate: () => void = () => {}
    const late = new Promise<'late'>((resolve) => {
      onLate = () => resolve('late')
    })
    const answer = transport.request(
      'sync:push',
      { clientId: ctx.clientId, changes: batch.map((entry) => wireChange(ctx.models, entry)) },
      {
        timeoutMs,
        onTimeout: () => {
          pacer.record(batch.length, timeoutMs)
          hooks.late(new TidesyncPushTimeoutError(batch.length, timeoutMs))
          onLate()
        },
      },
    )
    const first = await Promise.race([answer, late])
    if (first === 'late') return { batch, full, answer }
    pacer.record(batch.length, ctx.clock.now() - startedAt)
    return { batch, full, result: await apply(batch, first, full) }
  })
  if (!sent) return null
  if ('result' in sent) return sent.result
  // Late: the queue is free again; the caller's lock stays held until the answer came and was applied.
  const { batch, full, answer } = sent
  const reply = await answer
  const result = await queue.run(() => apply(batch, reply, full))
  hooks.answered()
  return result
}
