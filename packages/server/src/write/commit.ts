import type { Core } from '../core.js'
import type { TidesyncTx } from '../db/types.js'
import type { DeferredWrite } from './pending-writes.js'
import { writeRevisions } from './revisions.js'
import type { CommittedChange, StagedChange } from './staged-change.js'

/**
 * Runs `work` in one transaction, then writes the revisions of what it staged, commits, hands
 * deferred writes (counter deltas, updates of `buffered` models) to the write buffer and
 * publishes the committed changes. Any throw in `work` rolls everything back and nothing is
 * published.
 *
 * Deferred writes reach the buffer only after the commit: a change refused by scope or
 * `canWrite` is never staged, and a transaction that rolls back for any reason (a refusal, a
 * constraint, a failed COMMIT) hands nothing over. Inside the transaction, holding the records'
 * locks, their hand-off is marked in flight (`reserve`), so that the next writer of a record
 * and readers wait for it before reading the record's pending state: writes of one record reach
 * the buffer in the order they committed. A hand-off the buffer refuses is written to the table
 * directly (see `WriteBufferWrites.handOff`). Counter deltas are also recorded in the
 * transaction (`reserve`), so when the process dies between the commit and the hand-off they
 * are handed over later by another reader, writer or sweep, exactly once (buffer receipts);
 * the fields of a buffered update are then lost (at most once) and the marks expire.
 */
export async function commitChanges<T>(
  core: Core,
  work: (tx: TidesyncTx) => Promise<{ staged: StagedChange[]; result: T }>,
): Promise<{ result: T; committed: CommittedChange[] }> {
  let deferred: DeferredWrite[] = []
  let outcome: { staged: StagedChange[]; result: T }
  try {
    outcome = await core.db.transaction(async (tx) => {
      const out = await work(tx)
      deferred = deferredWrites(out.staged)
      // Before the revisions: their per-model lock is held until commit, keep it short.
      if (deferred.length > 0) await core.pending.reserve(tx, deferred)
      await writeRevisions(core, tx, out.staged)
      return out
    })
  } catch (error) {
    if (deferred.length > 0) {
      await core.pending
        .release(deferred)
        .catch((e) => core.logger.error('could not release write buffer hand-off marks', e))
    }
    throw error
  }
  const { staged, result } = outcome
  let handOffError: unknown
  if (deferred.length > 0) {
    try {
      await core.pending.handOff(deferred)
    } catch (error) {
      handOffError = error
    }
  }
  for (const change of staged) {
    if (change.status === 'written' && change.op === 'delete' && core.pending.afterCommitDelete) {
      await core.pending.afterCommitDelete(change.model, change.uid)
    }
  }
  const committed: CommittedChange[] = staged.map((c) => ({
    model: c.model.name,
    uid: c.uid,
    op: c.op,
    status: c.status,
    before: c.before,
    after: c.after,
    meta: c.meta,
  }))
  for (const run of distinctRuns(committed.filter((c) => c.status === 'written'))) await core.publish(run)
  // Committed, but (some of) its buffered writes were refused by the buffer: said, never hidden.
  if (handOffError !== undefined) throw handOffError
  return { result, committed }
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

/**
 * Splits changes, in order, into runs that name each record once: a live push lists upserts
 * and deletes apart, so two changes of one record in one message would lose their order (a
 * delete and a re-create). Separate messages arrive in order, as separate commits would.
 */
function distinctRuns(changes: CommittedChange[]): CommittedChange[][] {
  const runs: CommittedChange[][] = []
  let run: CommittedChange[] = []
  let seen = new Set<string>()
  for (const change of changes) {
    const key = `${change.model}:${change.uid}`
    if (seen.has(key)) {
      runs.push(run)
      run = []
      seen = new Set()
    }
    seen.add(key)
    run.push(change)
  }
  if (run.length > 0) runs.push(run)
  return runs
}
