import type { PullFormat } from '@tidesync/protocol'
import { applyServerBatch } from '../apply-server.js'
import { TidesyncServerError } from '../errors.js'
import { upsertsOf } from './columnar.js'
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
  const ask = (cursor: string, format: PullFormat, limit: number) =>
    transport.request('sync:pull', {
      model: model.wireName,
      where: where.wire,
      checkpoint: cursor,
      limit,
      ...(format === 'columns' ? { format } : {}),
    })
  const fetchPage = (cursor: string, limit = deps.pageSize) => {
    const request = (
      deps.wire.pullFormat === 'columns'
        ? ask(cursor, 'columns', limit).catch(async (error) => {
            // A server that predates `format` refuses it: ask again without, and stop asking.
            if (!(error instanceof TidesyncServerError) || error.code !== 'BAD_REQUEST') throw error
            const page = await ask(cursor, 'records', limit)
            deps.wire.pullFormat = 'records'
            return page
          })
        : ask(cursor, 'records', limit)
    ).then((page) => ({ ...page, upserts: upsertsOf(model, page) }))
    request.catch(() => {}) // awaited below; this only keeps an unused prefetch from being "unhandled"
    return request
  }
  // A small first page: a screen over the subset shows as soon as it is stored, while the
  // full pages that follow are asked for as usual.
  let next = fetchPage(checkpoint, deps.firstPageSize)
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
    // One transaction per chunk with its records, their metadata and (the last) the checkpoint.
    await queue.run(() =>
      applyServerBatch(
        ctx,
        model,
        { deletes: page.deletes, evict, upserts: [...page.upserts, ...keep] },
        {
          checkpoint: {
            key: subset.key,
            model: model.key,
            where: where.wire,
            checkpoint: page.checkpoint,
            updatedAt: ctx.clock.now(),
          },
          onChunk: (n) => {
            loaded += n
            if (total > deps.pageSize) {
              status.patch({
                progress: { model: model.key, loaded, total, ratio: Math.min(1, loaded / total) },
              })
            }
          },
        },
      ),
    )
    if (!page.hasMore) return
  }
}
