import type { RecordWithMeta, Tombstone, WireMeta } from '@tidesync/protocol'
import type { ClientContext } from './context.js'
import type { LocalDb } from './db/database.js'
import { dropFromPages, MetaPageBuilder, pageMetas, readMetas } from './db/meta-pages.js'
import { type CheckpointRow, emptyMeta, type MetaRow } from './db/rows.js'
import { freshMeta, mergeServerState, tombstone } from './merge.js'
import type { ModelInfo } from './schema/model.js'
import { decodeServerRecord } from './schema/record-codec.js'

type Row = Record<string, unknown>

/** What the server sent for one model: states, deletions and evictions. */
export interface ServerBatch {
  upserts?: readonly RecordWithMeta[]
  deletes?: readonly Tombstone[]
  /** Records that left the subset: dropped without a tombstone. */
  evict?: readonly string[]
}

export interface ApplyBatchOptions {
  /** Records the client does not hold are not added (answers to pushes, refreshes). @default false */
  onlyKnown?: boolean
  /** Stored in the transaction of the last chunk: the batch and its checkpoint commit together. */
  checkpoint?: CheckpointRow
  /** After each committed chunk, with the number of items it applied. */
  onChunk?: (applied: number) => void
}

/**
 * From this many states in a chunk, the records the client already holds are found with one
 * range read of keys (over the chunk's uid range) instead of a read per record. Pulls of an
 * initial load come in uid order, so the range is tight; the read is capped, and a range that
 * holds more local keys than that falls back to reading the chunk's records.
 */
const RANGE_READ_MIN = 64
/** From this many fresh records in a chunk, their metadata goes into one page (`db/meta-pages.ts`). */
const PAGE_MIN = 32
/**
 * Records per `bulkPut` call. IndexedDB clones every value inside `put()`, so one call of a
 * whole chunk is one main-thread task of about 60 ms per 1,000 records in Chromium; slices of
 * this size end the task at each slice (the next starts from the slice's completion), which
 * keeps every task far under 50 ms at about the same speed.
 */
const PUT_SLICE = 250

/** `table.bulkPut(rows)` in slices of `PUT_SLICE`, one after the other, in the caller's transaction. */
async function putInSlices(table: { bulkPut(rows: Row[]): Promise<unknown> }, rows: Row[]): Promise<void> {
  if (rows.length <= PUT_SLICE) {
    await table.bulkPut(rows)
    return
  }
  for (let start = 0; start < rows.length; start += PUT_SLICE) {
    await table.bulkPut(rows.slice(start, start + PUT_SLICE))
  }
}

interface Step {
  deletes: Tombstone[]
  evict: string[]
  upserts: RecordWithMeta[]
}

/** Cuts a batch into steps of at most `size` items, keeping the order: deletes, evictions, states. */
function steps(batch: ServerBatch, size: number): Step[] {
  const out: Step[] = []
  let current: Step = { deletes: [], evict: [], upserts: [] }
  let count = 0
  const add = <K extends keyof Step>(key: K, items: ReadonlyArray<Step[K][number]>) => {
    for (let i = 0; i < items.length; ) {
      if (count === size) {
        out.push(current)
        current = { deletes: [], evict: [], upserts: [] }
        count = 0
      }
      const take = items.slice(i, i + size - count) as Step[K]
      ;(current[key] as unknown[]).push(...take)
      count += take.length
      i += take.length
    }
  }
  add('deletes', batch.deletes ?? [])
  add('evict', batch.evict ?? [])
  add('upserts', batch.upserts ?? [])
  if (count > 0 || out.length === 0) out.push(current)
  return out
}

/**
 * Writes what the server sent for one model into the local database: one transaction per chunk
 * of at most `chunkSize` items (fake-indexeddb slows down quadratically in long transactions, and
 * a browser stays responsive), each with the records, their metadata and, for the last one, the
 * checkpoint. Idempotent: applying the same data twice is harmless, which is what makes retries
 * and two tabs safe. The merge rules are `mergeServerState`'s; records the client holds nothing
 * of skip the merge (their row is the decoded state, their metadata goes into a page).
 */
export async function applyServerBatch(
  ctx: ClientContext,
  model: ModelInfo,
  batch: ServerBatch,
  options: ApplyBatchOptions = {},
): Promise<void> {
  const { db } = ctx
  const size = (batch.upserts?.length ?? 0) + (batch.deletes?.length ?? 0) + (batch.evict?.length ?? 0)
  if (size === 0 && !options.checkpoint) return
  const all = steps(batch, ctx.chunkSize)
  for (const [i, step] of all.entries()) {
    const checkpoint = i === all.length - 1 ? options.checkpoint : undefined
    const tables = [db.records(model), db.meta(model), db.pages(model)]
    if (checkpoint) tables.push(db.checkpoints as never)
    await db.dexie.transaction('rw', tables, async () => {
      await writeTombstones(db, model, step.deletes)
      await writeEvictions(db, model, step.evict)
      await writeStates(db, model, step.upserts, options.onlyKnown ?? false)
      if (checkpoint) await db.checkpoints.put(checkpoint)
    })
    const applied = step.deletes.length + step.evict.length + step.upserts.length
    if (applied > 0) options.onChunk?.(applied)
  }
}

/**
 * Server deletions: the row goes and a tombstone stays, also for records the client does not
 * hold. Why for those too: answers and live pushes do not arrive in revision order (a pull or a
 * full reconcile is read before it is answered, and a newer change can be pushed before an
 * older one), so a state of the record older than its delete may still come; the tombstone is
 * what makes it lose (`mergeServerState`). Without it the record would come back, and once the
 * checkpoint is past the delete no later pull would take it away again.
 */
async function writeTombstones(db: LocalDb, model: ModelInfo, items: readonly Tombstone[]): Promise<void> {
  if (items.length === 0) return
  const uids = items.map((item) => item.uid)
  const rows = await db.records(model).bulkGet(uids)
  const metas = await readMetas(db, model, uids, rows)
  const putMetas = items.map((item, i) =>
    tombstone(metas[i] ?? emptyMeta(item.uid), item.deleted_at, item.rev),
  )
  await db.records(model).bulkDelete(uids)
  await db.meta(model).bulkPut(putMetas)
}

/**
 * Records that left the subset: row and metadata go (no tombstone: they still exist on the
 * server), except a tombstone already there (a delete the client was told about, or its own
 * unconfirmed one), which keeps an older state of the record from bringing it back.
 */
async function writeEvictions(db: LocalDb, model: ModelInfo, uids: readonly string[]): Promise<void> {
  if (uids.length === 0) return
  const metas = await db.meta(model).bulkGet([...uids])
  await db.records(model).bulkDelete([...uids])
  await db.meta(model).bulkDelete(uids.filter((_, i) => !metas[i]?.deleted_at))
  await dropFromPages(db, model, uids)
}

/** What the client holds of some records: rows, metadata, and which uids it holds anything of. */
interface LocalState {
  rows: Map<string, Row>
  metas: Map<string, MetaRow>
}

async function readState(db: LocalDb, model: ModelInfo, uids: readonly string[]): Promise<LocalState> {
  const rows = new Map<string, Row>()
  const metas = new Map<string, MetaRow>()
  if (uids.length === 0) return { rows, metas }
  let wanted: readonly string[] = uids
  if (uids.length >= RANGE_READ_MIN) {
    let low = uids[0]!
    let high = uids[0]!
    for (const uid of uids) {
      if (uid < low) low = uid
      if (uid > high) high = uid
    }
    const cap = uids.length * 4
    const [rowKeys, metaKeys] = await Promise.all([
      db.records(model).where(':id').between(low, high, true, true).limit(cap).primaryKeys(),
      db.meta(model).where(':id').between(low, high, true, true).limit(cap).primaryKeys(),
    ])
    if (rowKeys.length < cap && metaKeys.length < cap) {
      const held = new Set<string>([...rowKeys, ...metaKeys])
      wanted = uids.filter((uid) => held.has(uid))
      if (wanted.length === 0) return { rows, metas }
    }
  }
  const found = await db.records(model).bulkGet([...wanted])
  const stored = await db.meta(model).bulkGet([...wanted])
  const paged: string[] = []
  wanted.forEach((uid, i) => {
    const row = found[i]
    const meta = stored[i]
    if (row) rows.set(uid, row)
    if (meta) metas.set(uid, meta)
    else if (row) paged.push(uid)
  })
  for (const [uid, meta] of await pageMetas(db, model, paged)) metas.set(uid, meta)
  return { rows, metas }
}

/** Whether every state is a live record's, each record once (sorted uids are checked cheaply). */
function allFresh(items: readonly RecordWithMeta[], uids: readonly string[]): boolean {
  let sorted = true
  for (let i = 0; i < items.length; i++) {
    if (items[i]!.meta.deleted_at) return false
    if (i > 0 && sorted && !(uids[i - 1]! < uids[i]!)) sorted = false
  }
  return sorted || new Set(uids).size === uids.length
}

/**
 * The common case of an initial load: states of records the client holds nothing of, each once.
 * The rows are the decoded states; the metadata goes into one page.
 */
async function writeFresh(db: LocalDb, model: ModelInfo, items: readonly RecordWithMeta[]): Promise<void> {
  const rows: Row[] = new Array(items.length)
  if (items.length >= PAGE_MIN) {
    const page = new MetaPageBuilder(model)
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      const row = decodeServerRecord(model, item)
      rows[i] = row
      page.add(item.record.uid, item.meta, row)
    }
    await putInSlices(db.records(model), rows)
    await db.pages(model).add(page.build())
    return
  }
  const metas: MetaRow[] = new Array(items.length)
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!
    const row = decodeServerRecord(model, item)
    rows[i] = row
    metas[i] = freshMeta(model, item.record.uid, item.meta, row)
  }
  await putInSlices(db.records(model), rows)
  await db.meta(model).bulkPut(metas)
}

/** Server states of records: merged into what the client holds, or written as they are. */
async function writeStates(
  db: LocalDb,
  model: ModelInfo,
  items: readonly RecordWithMeta[],
  onlyKnown: boolean,
): Promise<void> {
  if (items.length === 0) return
  const uids = items.map((item) => item.record.uid)
  const { rows, metas } = await readState(db, model, uids)
  if (rows.size === 0 && metas.size === 0 && !onlyKnown && allFresh(items, uids)) {
    return writeFresh(db, model, items)
  }
  /** The new row (null: deleted) and meta of each record the chunk changes, in the end. */
  const nextRows = new Map<string, Row | null>()
  const nextMetas = new Map<string, MetaRow>()
  /** Records the client held nothing of, written without a merge (their meta is not stored yet). */
  const fresh = new Map<string, { meta: WireMeta; row: Row }>()
  for (const item of items) {
    const uid = item.record.uid
    const earlier = fresh.get(uid)
    if (earlier) {
      // The same record twice in one chunk: the later state merges into the earlier one.
      fresh.delete(uid)
      metas.set(uid, freshMeta(model, uid, earlier.meta, earlier.row))
      nextMetas.set(uid, metas.get(uid)!)
    }
    const row = nextRows.has(uid) ? (nextRows.get(uid) ?? undefined) : rows.get(uid)
    const meta = metas.get(uid)
    if (!row && !meta) {
      if (onlyKnown) continue
      if (!item.meta.deleted_at) {
        const decoded = decodeServerRecord(model, item)
        nextRows.set(uid, decoded)
        fresh.set(uid, { meta: item.meta, row: decoded })
        continue
      }
    }
    const result = mergeServerState(model, item, row, meta, onlyKnown)
    if (result.row !== undefined) nextRows.set(uid, result.row)
    if (result.meta) {
      metas.set(uid, result.meta)
      nextMetas.set(uid, result.meta)
    }
  }
  if (fresh.size >= PAGE_MIN) {
    const page = new MetaPageBuilder(model)
    for (const [uid, { meta, row }] of fresh) page.add(uid, meta, row)
    await db.pages(model).add(page.build())
  } else {
    for (const [uid, { meta, row }] of fresh) nextMetas.set(uid, freshMeta(model, uid, meta, row))
  }
  const putRows: Row[] = []
  const deleteRows: string[] = []
  for (const [uid, row] of nextRows) {
    if (row) putRows.push(row)
    else deleteRows.push(uid)
  }
  if (deleteRows.length > 0) await db.records(model).bulkDelete(deleteRows)
  if (putRows.length > 0) await putInSlices(db.records(model), putRows)
  if (nextMetas.size > 0) await db.meta(model).bulkPut([...nextMetas.values()])
}
