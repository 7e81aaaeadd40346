import { type TidesyncClientError, TidesyncServerError, toClientError } from '../errors.js'
import type { SyncDeps } from './deps.js'
import { buildMetadata, fullSync } from './full-sync.js'
import { pullSubset } from './pull.js'
import type { Subset } from './subsets.js'

/** The checkpoint of "nothing known yet": the server answers with a paged initial load. */
const INITIAL_CHECKPOINT = '0'

function isServerError(error: unknown, ...codes: string[]): error is TidesyncServerError {
  return error instanceof TidesyncServerError && codes.includes(error.code)
}

/**
 * Brings one subset up to date, keeping its `state$`: subscribes it to live changes on this
 * connection (once), then chooses how to sync it:
 * - it has a checkpoint: a delta pull from there. A checkpoint the server refuses (pruned:
 *   `CHECKPOINT_EXPIRED`; damaged: `BAD_REQUEST`) is dropped for a full reconcile;
 * - no checkpoint and no local record of it: the initial load, a paged pull from "0" (with
 *   progress), or a full reconcile where the server refuses that;
 * - no checkpoint but local records: a full reconcile (both sides compared), after which the
 *   changes it queued for the server are pushed (`pushQueued`).
 * Throws what failed (the subset stays marked for the next cycle).
 */
export async function syncSubset(
  deps: SyncDeps,
  subset: Subset,
  pushQueued: () => Promise<unknown>,
): Promise<void> {
  const { ctx, transport, subsets } = deps
  const reconcile = async () => {
    if ((await fullSync(deps, subset)) > 0) await pushQueued()
  }
  subset.needsSync = false
  subsets.patchState(subset, { syncing: true })
  try {
    if (!subset.subscriptionId) {
      const { subscriptionId } = await transport.request('subscribe', {
        model: subset.model.wireName,
        where: subset.where.wire,
      })
      if (subsets.isActive(subset)) subsets.bindSubscription(subset, subscriptionId)
      else {
        transport.request('unsubscribe', { subscriptionId }).catch(() => {})
        return
      }
    }
    const stored = await ctx.db.checkpoints.get(subset.key)
    if (stored?.checkpoint) {
      try {
        await pullSubset(deps, subset, stored.checkpoint)
      } catch (error) {
        if (!isServerError(error, 'CHECKPOINT_EXPIRED', 'BAD_REQUEST')) throw error
        ctx.logger.debug(`checkpoint of ${subset.key} refused (${error.code}): full reconcile`)
        await ctx.db.checkpoints.delete(subset.key)
        await reconcile()
      }
    } else if (Object.keys((await buildMetadata(ctx, subset)).metadata).length === 0) {
      try {
        await pullSubset(deps, subset, INITIAL_CHECKPOINT)
      } catch (error) {
        if (!isServerError(error, 'BAD_REQUEST', 'CHECKPOINT_EXPIRED')) throw error
        await reconcile()
      }
    } else await reconcile()
    subsets.patchState(subset, { syncing: false, synced: true, error: null })
  } catch (error) {
    subset.needsSync = true
    subsets.patchState(subset, { syncing: false, error: toClientError(error) })
    throw error
  }
}

/**
 * Syncs every active subset that needs it, one after another, while online. Resolves with the
 * errors of those that failed (each also goes to `onError` as it happens).
 */
export async function syncSubsets(
  deps: SyncDeps,
  online: () => boolean,
  pushQueued: () => Promise<unknown>,
  onError: (error: TidesyncClientError) => void,
): Promise<TidesyncClientError[]> {
  const failures: TidesyncClientError[] = []
  for (const subset of deps.subsets.all()) {
    if (!subset.needsSync || !online()) continue
    try {
      await syncSubset(deps, subset, pushQueued)
    } catch (error) {
      const clientError = toClientError(error)
      failures.push(clientError)
      onError(clientError)
    }
  }
  return failures
}
