import type { RecordWithMeta, Tombstone } from '@tidesync/protocol'
import { applyTombstones, applyUpserts } from '../apply-remote.js'
import { dropFromPages, readMetas } from '../db/meta-pages.js'
import { hasPending } from '../db/rows.js'
import { entriesFor } from '../outbox.js'
import type { ModelInfo } from '../schema/model.js'
import type { SyncDeps } from './deps.js'

const EPOCH = '1970-01-01T00:00:00.000Z'

function isRecordWithMeta(value: unknown): value is RecordWithMeta {
  return value !== null && typeof value === 'object' && 'record' in value && 'meta' in value
}

function isTombstone(value: unknown): value is Tombstone {
  return value !== null && typeof value === 'object' && 'deleted_at' in value && !('record' in value)
}

/**
 * Marks records as "state unknown": their meta claims nothing (rev -1, epoch timestamps) so the
 * next full reconcile sends the server's state, and the model's checkpoints are dropped so the
 * next sync IS a full reconcile. The recovery path for damaged or doubtful local state.
 */
export async function markForReconcile(
  deps: SyncDeps,
  model: ModelInfo,
  uids: readonly string[],
): Promise<void> {
  const { db } = deps.ctx
  await db.dexie.transaction(
    'rw',
    [db.records(model), db.meta(model), db.pages(model), db.checkpoints],
    async () => {
      const metas = await readMetas(db, model, uids, await db.records(model).bulkGet([...uids]))
      const fixed = metas.flatMap((meta) =>
        meta && !meta.deleted_at ? [{ ...meta, rev: -1, updated_at: EPOCH }] : [],
      )
      if (fixed.length) await db.meta(model).bulkPut(fixed)
      await db.checkpoints.where('model').equals(model.key).delete()
    },
  )
}

/**
 * Fetches the server's state of records whose local state may be wrong (a change was rejected,
 * or a push answered "duplicate" without the resulting state) and applies it. Records the server
 * does not have (a rejected create) are dropped locally unless they have other pending changes.
 * When the server cannot be asked, falls back to a full reconcile of the model.
 */
export async function refreshRecords(
  deps: SyncDeps,
  items: ReadonlyArray<{ model: ModelInfo; uid: string }>,
): Promise<void> {
  const { ctx, transport, queue } = deps
  for (const { model, uid } of items) {
    let answer: unknown
    try {
      answer = await transport.request('service', {
        model: model.wireName,
        method: 'findUnique',
        args: { uid },
      })
    } catch (error) {
      ctx.logger.debug(`cannot refresh ${model.key} '${uid}', reconciling later`, error)
      await markForReconcile(deps, model, [uid])
      continue
    }
    await queue.run(async () => {
      if (isRecordWithMeta(answer)) {
        if (answer.meta.deleted_at) {
          await applyTombstones(ctx, model, [
            { uid, deleted_at: answer.meta.deleted_at, rev: answer.meta.rev },
          ])
        } else await applyUpserts(ctx, model, [answer], { onlyKnown: true })
      } else if (isTombstone(answer)) {
        await applyTombstones(ctx, model, [answer])
      } else {
        const { db } = ctx
        const scope = [db.records(model), db.meta(model), db.pages(model), db.outbox]
        await db.dexie.transaction('rw', scope, async () => {
          const meta = await db.meta(model).get(uid)
          if (meta && hasPending(meta)) return
          if ((await entriesFor(db, model, uid)).length > 0) return
          await db.records(model).delete(uid)
          await db.meta(model).delete(uid)
          await dropFromPages(db, model, [uid])
        })
      }
    })
  }
}
