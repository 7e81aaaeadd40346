import { applyTombstones, applyUpserts, evictRecords, saveCheckpoint } from '../apply-remote.js'
import type { SyncDeps } from './deps.js'
import { resolveEvictions } from './evictions.js'
import type { Subset } from './subsets.js'

/**
 * Delta sync of one subset: pulls the changes since its checkpoint, page after page, applying
 * each page and storing the page's checkpoint as it goes (an interrupted pull resumes where it
 * stopped); the next page is already requested while one is written. Throws the server's error answer (CHECKPOINT_EXPIRED: the caller falls back to a
 * full reconcile).
 */
export async function pullSubset(deps: SyncDeps, subset: Subset, checkpoint: string): Promise<void> {
  const { ctx, transport, queue, status } = deps
  const { model, where } = subset
  let loaded = 0
  let total = 0
  const fetchPage = (cursor: string) => {
    const request = transport.request('sync:pull', {
      model: model.wireName,
      where: where.wire,
      checkpoint: cursor,
      limit: deps.pageSize,
    })
    request.catch(() => {}) // awaited below; this only keeps an unused prefetch from being "unhandled"
    return request
  }
  let next = fetchPage(checkpoint)
  for (;;) {
    const page = await next
    // Ask for the next page while this one is written: the server and the wire work while
    // IndexedDB does. Only the page's checkpoint is needed for that, and it is stored only once
    // the page is written, so an interrupted pull still resumes at the right place.
    if (page.hasMore) next = fetchPage(page.checkpoint)
    ctx.hlc.observe(page.serverClock)
    const size = page.upserts.length + page.deletes.length + page.evictions.length
    total = Math.max(total, loaded + Math.max(page.remaining, size))
    const { evict, keep } = await resolveEvictions(deps, model, subset, page.evictions)
    await queue.run(async () => {
      await applyTombstones(ctx, model, page.deletes)
      await evictRecords(ctx, model, evict)
      await applyUpserts(ctx, model, [...page.upserts, ...keep], {
        onChunk: (n) => {
          loaded += n
          if (total > deps.pageSize) {
            status.patch({
              progress: { model: model.key, loaded, total, ratio: Math.min(1, loaded / total) },
            })
          }
        },
      })
      await saveCheckpoint(ctx, {
        key: subset.key,
        model: model.key,
        where: where.wire,
        checkpoint: page.checkpoint,
        updatedAt: ctx.clock.now(),
      })
    })
    loaded += page.deletes.length + page.evictions.length
    if (!page.hasMore) return
  }
}
