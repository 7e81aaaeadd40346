import type { Core } from '../core.js'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { buildFilter } from '../sync/scope.js'
import { stageChange } from './apply-change.js'
import { commitChanges } from './commit.js'
import { retryOnPendingChange } from './pending-writes.js'
import type { ChangeRequest, CommittedChange } from './staged-change.js'

/**
 * Applies one change in its own transaction (row, metadata and change log together) and
 * publishes it. `beforeStage` runs first inside the same transaction (push uses it to record
 * the change id, so a retried push applies once); when it returns false nothing is applied and
 * the result is null. The record's pending write-buffer state is read before the transaction;
 * when it changes before the record's lock is taken, the whole transaction runs again.
 */
export async function applyOne<TCtx>(
  core: Core<TCtx>,
  model: ResolvedModel<TCtx>,
  req: ChangeRequest,
  ctx: TCtx,
  beforeStage?: (tx: TidesyncTx) => Promise<boolean>,
): Promise<CommittedChange | null> {
  const filter = buildFilter(model, undefined, ctx)
  return retryOnPendingChange(async () => {
    const pending = (await core.pending.snapshot(req.model, [req.uid])).get(req.uid)
    const { committed } = await commitChanges(core as Core, async (tx) => {
      if (beforeStage && !(await beforeStage(tx))) return { staged: [], result: undefined }
      const staged = await stageChange(core, tx, req, ctx, {
        scopeSql: filter.scopeSql,
        matchesScope: filter.matchesScope,
        pending,
      })
      return { staged: [staged], result: undefined }
    })
    return committed[0] ?? null
  })
}
