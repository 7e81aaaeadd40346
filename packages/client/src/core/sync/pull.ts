import type { PullFormat } from '@tidesync/protocol'
import { applyServerBatch } from '../apply-server.js'
import { TidesyncServerError } from '../errors.js'
import { upsertsOf } from './columnar.js'
import type { SyncDeps } from './deps.js'
import { resolveEvictions } from './evictions.js'
import { PagePrefetch } from './page-prefetch.js'
import type { Subset } from './subsets.js'

/**
 * Pages asked for and not yet written, at most: two keep the server a page ahead of a writer
 * that is slower than it (the usual case), and hold at most three pages in memory with the one
 * being written.
 */
const PAGES_AHEAD = 2

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
  const fetchPage = (cursor: string, first: boolean) => {
    const limit = first ? deps.firstPageSize : deps.pageSize
    return (
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
  }
  // A small first page: a screen over the subset shows as soon as it is stored, while the full
  // pages that follow are asked for as usual. Each next page is asked for as soon as the one
  // before it arrives (PagePrefetch): the server and the wire work while IndexedDB does. A page's
  // checkpoint is stored only once the page is written, so an interrupted pull still resumes at
  // the right place.
  const pages = new PagePrefetch(fetchPage, PAGES_AHEAD)
  pages.start(checkpoint)
  try {
    for (;;) {
      const page = await pages.next()
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
  } finally {
    pages.stop()
  }
}
