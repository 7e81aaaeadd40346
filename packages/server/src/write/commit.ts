import type { LiveChange } from '@tidesync/protocol'
import type { StagedWrites } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { CAPTURE_OFF_STATEMENT } from '../db/capture/capture-sql.js'
import type { TidesyncTx } from '../db/types.js'
import { publishChanges } from '../live/publish-changes.js'
import { wireChange } from '../model/record.js'
import type { DeferredWrite } from './pending-writes.js'
import { writeRevisions } from './revisions.js'
import type { StagedChange } from './staged-change.js'

/**
 * Runs `work` in one transaction, then writes the revisions of what it staged, commits, hands
 * deferred writes (counter deltas, updates of `buffered` models) to the write buffer and
 * publishes the committed changes. Any throw in `work` rolls everything back and nothing is
 * published. Returns each staged change in its wire form (`changes[i]` is `staged[i]`), made
 * once here: the caller's answer and the live push are built from these same objects.
 *
 * Deferred writes reach the buffer only after the commit: a change refused by scope or
 * `canWrite` is never staged, and a transaction that rolls back for any reason (a refusal, a
 * constraint, a failed COMMIT) hands nothing over: stage -> commit -> deliver (or abandon).
 * Staging marks the records in flight inside the transaction, holding their locks, so that the
 * next writer of a record and readers wait for the delivery before reading the record's pending
 * state, and records the counter deltas owed in the transaction, so they are delivered exactly
 * once even if the process dies after the commit (the write buffer's `deferred` API owns this
 * invariant: see write-buffer `tables/deferred.ts`).
 */
export async function commitChanges<T>(
  core: Core,
  work: (tx: TidesyncTx) => Promise<{ staged: StagedChange[]; result: T }>,
  options: {
    /**
     * `work` turns capture off itself, in a statement it runs before any write to a synced
     * table (`lockRecords(tx, keys, { captureOff: true })`): one round trip less.
     */
    captureOffByWork?: boolean
  } = {},
): Promise<{ result: T; changes: LiveChange[] }> {
  let deferred: StagedWrites | undefined
  let outcome: { staged: StagedChange[]; result: T }
  try {
    outcome = await core.db.transaction(async (tx) => {
      // This transaction logs its changes itself (with the writers' clocks): capture skips it.
      if (!options.captureOffByWork) await tx.execute(sql.raw(CAPTURE_OFF_STATEMENT))
      const out = await work(tx)
      const writes = deferredWrites(out.staged)
      // Before the revisions: their per-model lock is held until commit, keep it short.
      if (writes.length > 0) deferred = await core.pending.stage(tx, writes)
      await writeRevisions(core, tx, out.staged)
      return out
    })
  } catch (error) {
    if (deferred) {
      await core.pending
        .abandon(deferred)
        .catch((e) => core.logger.error('could not release write buffer hand-off marks', e))
    }
    throw error
  }
  const { staged, result } = outcome
  let handOffError: unknown
  if (deferred) {
    try {
      await core.pending.deliver(deferred)
    } catch (error) {
      handOffError = error
    }
  }
  for (const change of staged) {
    if (change.status === 'written' && change.op === 'delete' && core.pending.afterCommitDelete) {
      await core.pending.afterCommitDelete(change.model, change.uid)
    }
  }
  const changes = staged.map((c) => wireChange(c.model, c.uid, c.op, c.before.row, c.after))
  await publishChanges(
    core,
    staged.flatMap((c, i) => (c.status === 'written' ? [{ model: c.model.name, change: changes[i]! }] : [])),
  )
  // Committed, but (some of) its buffered writes were refused by the buffer: said, never hidden.
  if (handOffError !== undefined) throw handOffError
  return { result, changes }
}

/** The writes of committed changes that go to the write buffer. */
function deferredWrites(staged: StagedChange[]): DeferredWrite[] {
  const writes: DeferredWrite[] = []
  for (const change of staged) {
    if (change.status !== 'written' || (!change.deferredFields && !change.deferredDeltas)) continue
    writes.push({
      model: change.model,
      uid: change.uid,
      fields: change.deferredFields,
      deltas: change.deferredDeltas,
    })
  }
  return writes
}
