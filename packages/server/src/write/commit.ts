import type { Core } from '../core.js'
import type { TidesyncTx } from '../db/types.js'
import { writeRevisions } from './revisions.js'
import type { CommittedChange, StagedChange } from './staged-change.js'

/**
 * Runs `work` in one transaction, then writes the revisions of what it staged, commits, hands
 * deferred counter deltas to the write buffer and publishes the committed changes. Any throw in
 * `work` rolls everything back and nothing is published.
 */
export async function commitChanges<T>(
  core: Core,
  work: (tx: TidesyncTx) => Promise<{ staged: StagedChange[]; result: T }>,
): Promise<{ result: T; committed: CommittedChange[] }> {
  const { staged, result } = await core.db.transaction(async (tx) => {
    const out = await work(tx)
    await writeRevisions(core, tx, out.staged)
    return out
  })
  for (const change of staged) {
    if (change.deferredDeltas && core.pending.afterCommitIncrement) {
      await core.pending.afterCommitIncrement(change.model, change.uid, change.deferredDeltas)
    }
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
  return { result, committed }
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
