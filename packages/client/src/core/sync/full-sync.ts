import type { ClientMeta, Hlc, JsonValue } from '@tidesync/protocol'
import { v7 as uuidv7 } from 'uuid'
import { applyServerBatch } from '../apply-server.js'
import { type ClientContext, nextClock } from '../context.js'
import { readAllMetas, readRowAndMeta } from '../db/meta-pages.js'
import { hasPending, type MetaRow, type StoredChange } from '../db/rows.js'
import { enqueue, entriesFor, markPending } from '../outbox.js'
import { toWire } from '../schema/codec.js'
import type { ModelInfo } from '../schema/model.js'
import { matchesWhere } from '../where.js'
import type { SyncDeps } from './deps.js'
import { resolveEvictions } from './evictions.js'
import type { Subset } from './subsets.js'

const EPOCH = '1970-01-01T00:00:00.000Z'

function validIso(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value))
}

/** What a full reconcile sends, and the local revision of each record in it when it was read. */
export interface LocalDictionary {
  metadata: Record<string, ClientMeta>
  /** The meta's `rev` of each uid in `metadata` (null: no meta). */
  revs: Map<string, number | null>
}

/**
 * The dictionary a full reconcile sends: every local record that matches the subset (damaged or
 * missing meta claims the epoch, so the server's state wins) and the model's unconfirmed local
 * deletes.
 */
export async function buildMetadata(ctx: ClientContext, subset: Subset): Promise<LocalDictionary> {
  const { db } = ctx
  const { model, where } = subset
  const [rows, { stored, byUid: metaByUid }] = await db.dexie.transaction(
    'r',
    [db.records(model), db.meta(model), db.pages(model)],
    () => Promise.all([db.records(model).toArray(), readAllMetas(db, model)]),
  )
  const metas = stored as MetaRow[]
  const metadata: Record<string, ClientMeta> = Object.create(null)
  const revs = new Map<string, number | null>()
  for (const row of rows) {
    if (!matchesWhere(model, where.wire, row)) continue
    const meta = metaByUid.get(row.uid as string) as MetaRow | undefined
    const created = validIso(meta?.created_at) ? meta.created_at : EPOCH
    const updated = validIso(meta?.updated_at) ? meta.updated_at : EPOCH
    metadata[row.uid as string] = { created_at: created, updated_at: updated, deleted_at: null }
    revs.set(row.uid as string, meta?.rev ?? null)
  }
  for (const meta of metas) {
    if (!meta?.pendingDelete || !validIso(meta.deleted_at)) continue
    metadata[meta.uid] = {
      created_at: validIso(meta.created_at) ? meta.created_at : EPOCH,
      updated_at: validIso(meta.updated_at) ? meta.updated_at : meta.deleted_at,
      deleted_at: meta.deleted_at,
    }
    revs.set(meta.uid, meta.rev)
  }
  return { metadata: { ...metadata }, revs }
}

/**
 * A record without the nulls of nullable columns that have no default: the database makes them
 * null anyway, and a server that does not know such a column yet still accepts the create (the
 * same rule as a local create).
 */
function withoutNulls(model: ModelInfo, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(row)) {
    const column = model.columns.get(key)
    if (value === null && column?.nullable && !column.hasDefault) continue
    out[key] = value
  }
  return out
}

function clockFromIso(iso: string | null, node: string): Hlc | null {
  return validIso(iso) ? `${new Date(iso).toISOString()}-0000-${node}` : null
}

/**
 * Queues what the server asked for: creates for records only the client has, updates for
 * records the client has newer. Updates keep each field's own clock, so a field the server has
 * newer is not overwritten. Skipped: records with changes still in the outbox (those changes are
 * pushed anyway), and records whose revision changed since the dictionary was read (`revs`). The
 * server's answer is only as new as that dictionary: a push of the record that crossed the
 * reconcile (sent before, answered after the server compared) makes the answer ask for a change
 * the server has meanwhile got, and queuing it again would push the same create twice.
 */
export async function queueRepairs(
  ctx: ClientContext,
  model: ModelInfo,
  addDatabase: readonly string[],
  updateDatabase: readonly string[],
  revs: ReadonlyMap<string, number | null>,
): Promise<number> {
  const { db } = ctx
  let queued = 0
  const scope = [db.records(model), db.meta(model), db.pages(model), db.outbox, db.state]
  await db.dexie.transaction('rw', scope, async () => {
    const work = [
      ...addDatabase.map((uid) => ({ uid, create: true })),
      ...updateDatabase.map((uid) => ({ uid, create: false })),
    ]
    for (const { uid, create } of work) {
      const [row, meta] = await readRowAndMeta(db, model, uid)
      if (!row || meta?.deleted_at || (meta && hasPending(meta))) continue
      if ((meta?.rev ?? null) !== revs.get(uid)) continue
      if ((await entriesFor(db, model, uid)).length > 0) continue
      const changes: StoredChange[] = []
      if (create) {
        const data = toWire(model, withoutNulls(model, row))
        changes.push({ id: uuidv7(), uid, op: 'create', data, clock: await nextClock(ctx) })
      } else {
        const byClock = new Map<Hlc, Record<string, unknown>>()
        const fallback = clockFromIso(meta?.updated_at ?? null, ctx.hlc.node)
        for (const column of model.columns.values()) {
          if (column.key === 'uid' || column.counter || row[column.key] === undefined) continue
          const clock = meta?.clocks[column.key] ?? fallback
          if (!clock) continue
          const fields = byClock.get(clock) ?? {}
          fields[column.key] = row[column.key]
          byClock.set(clock, fields)
        }
        for (const [clock, fields] of byClock) {
          const patch: Record<string, JsonValue> = toWire(model, fields)
          changes.push({ id: uuidv7(), uid, op: 'update', patch, clock })
        }
      }
      for (const change of changes) {
        await enqueue(db, model, change, ctx.clock.now())
        if (meta) markPending(model, meta, change)
      }
      if (meta && changes.length) await db.meta(model).put(meta)
      queued += changes.length
    }
  })
  return queued
}

/**
 * Full reconcile of one subset (the seed's algorithm): send the local dictionary, apply what the
 * server says (add, update, delete, evict), store the new checkpoint and queue what it asks for.
 * Resolves with the number of changes queued (the caller pushes them).
 */
export async function fullSync(deps: SyncDeps, subset: Subset): Promise<number> {
  const { ctx, transport, queue, status } = deps
  const { model, where } = subset
  const { metadata, revs } = await buildMetadata(ctx, subset)
  const result = await transport.request('sync:full', { model: model.wireName, where: where.wire, metadata })
  ctx.hlc.observe(result.serverClock)
  const incoming = [...result.addClient, ...result.updateClient]
  const { evict, keep } = await resolveEvictions(deps, model, subset, result.evictClient)
  const total = result.deleteClient.length + evict.length + incoming.length + keep.length
  let loaded = 0
  await queue.run(() =>
    applyServerBatch(
      ctx,
      model,
      { deletes: result.deleteClient, evict, upserts: [...incoming, ...keep] },
      {
        checkpoint: {
          key: subset.key,
          model: model.key,
          where: where.wire,
          checkpoint: result.checkpoint,
          updatedAt: ctx.clock.now(),
        },
        onChunk: (n) => {
          loaded += n
          if (total > ctx.chunkSize) {
            status.patch({
              progress: { model: model.key, loaded, total, ratio: Math.min(1, loaded / total) },
            })
          }
        },
      },
    ),
  )
  if (result.addDatabase.length === 0 && result.updateDatabase.length === 0) return 0
  return queueRepairs(ctx, model, result.addDatabase, result.updateDatabase, revs)
}
