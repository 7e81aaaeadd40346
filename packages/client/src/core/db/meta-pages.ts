import type { Hlc, WireMeta } from '@tidesync/protocol'
import { Dexie } from 'dexie'
import { v7 as uuidv7 } from 'uuid'
import type { ModelInfo } from '../schema/model.js'
import { codecOf } from '../schema/record-codec.js'
import type { LocalDb } from './database.js'
import type { MetaPageRow, MetaRow } from './rows.js'

/**
 * Metadata pages: the server metadata of records a pull wrote in bulk, one `p_<model>` row per
 * chunk instead of one `m_<model>` row per record. Writing a record then costs one put, not two
 * (on fake-indexeddb and in browsers alike the cost of a put is mostly per put, not per byte).
 * A page is keyed by `[first uid, last uid, page id]` and holds its uids sorted, so the page of a
 * uid is found from the keys alone (the pages whose range holds it), without an index entry per
 * record (which would cost about as much as the second put it saves).
 *
 * The rules every reader and writer follows:
 * - a record's metadata is its `m_` row when it has one, else its entry in a page;
 * - a page entry counts only while the record's row exists;
 * - a page entry is never rewritten: whatever changes the record's metadata later (a local
 *   write, a newer server state, a tombstone) writes an `m_` row, which wins from then on;
 * - a record leaves its page when both its row and its `m_` row go (an eviction, a refresh that
 *   finds the record gone: `dropFromPages`), so that it may come back later in a new page; should
 *   two pages still list a uid, the newer page (higher id, a UUIDv7) wins.
 * Pages hold clean server state only: no pending writes, no deltas, no tombstones.
 * @internal
 */

type Row = Record<string, unknown>
type PageKey = MetaPageRow['key']

/** Collects the metadata of fresh records into one page. @internal */
export class MetaPageBuilder {
  private readonly page: MetaPageRow
  private readonly clockSets = new Map<string, number>()
  private readonly keys: readonly string[]
  private readonly counters: readonly string[]
  private lastClocks: Record<string, Hlc> | undefined
  private lastIndex = -1

  constructor(model: ModelInfo) {
    const codec = codecOf(model)
    this.keys = codec.keys
    this.counters = codec.counters.map((i) => codec.keys[i]!)
    this.page = {
      key: ['', '', ''],
      uids: [],
      created: [],
      updated: [],
      revs: [],
      clocks: [],
      clockSets: [],
      base: {},
    }
    for (const key of this.counters) this.page.base[key] = []
  }

  get size(): number {
    return this.page.uids.length
  }

  /**
   * Adds a record's server metadata. Clocks of columns the model does not know are dropped, as
   * `mergeServerState` drops them; a record that lacks a column keeps that column's clock (a
   * pull always sends whole records, and a clock without a value is never used).
   */
  add(uid: string, meta: WireMeta, row: Row): void {
    const { page } = this
    page.uids.push(uid)
    page.created.push(meta.created_at)
    page.updated.push(meta.updated_at)
    page.revs.push(meta.rev)
    // Records written together usually carry the same clocks: keep each distinct set once.
    const clocks = meta.clocks
    if (!this.sameAsLast(clocks)) {
      this.lastIndex = this.indexOf(clocks)
      this.lastClocks = clocks
    }
    page.clocks.push(this.lastIndex)
    for (const key of this.counters) page.base[key]!.push(Number(row[key] ?? 0))
  }

  /** The page, its uids sorted (a pull's pages come sorted; others are sorted here). */
  build(): MetaPageRow {
    const page = this.page
    const { uids } = page
    let sorted = true
    for (let i = 1; i < uids.length && sorted; i++) sorted = uids[i - 1]! < uids[i]!
    if (!sorted) {
      const order = uids.map((_, i) => i).sort((a, b) => (uids[a]! < uids[b]! ? -1 : 1))
      const pick = <T>(values: T[]) => order.map((i) => values[i]!)
      page.uids = pick(page.uids)
      page.created = pick(page.created)
      page.updated = pick(page.updated)
      page.revs = pick(page.revs)
      page.clocks = pick(page.clocks)
      for (const key of Object.keys(page.base)) page.base[key] = pick(page.base[key]!)
    }
    page.key = [page.uids[0]!, page.uids.at(-1)!, uuidv7()]
    return page
  }

  /** Whether these clocks are the previous record's (same columns, same values; no allocation). */
  private sameAsLast(clocks: Record<string, Hlc>): boolean {
    const last = this.lastClocks
    if (!last) return false
    if (clocks === last) return true
    let count = 0
    for (const key in clocks) {
      if (clocks[key] !== last[key]) return false
      count++
    }
    for (const _ in last) count--
    return count === 0
  }

  private indexOf(clocks: Record<string, Hlc>): number {
    let signature = ''
    for (const key of this.keys) {
      const clock = clocks[key]
      if (clock && Object.hasOwn(clocks, key)) signature += `${key}\u0000${clock}\u0000`
    }
    let index = this.clockSets.get(signature)
    if (index === undefined) {
      const kept: Record<string, Hlc> = {}
      for (const key of this.keys) {
        const clock = clocks[key]
        if (clock && Object.hasOwn(clocks, key)) kept[key] = clock
      }
      index = this.page.clockSets.push(kept) - 1
      this.clockSets.set(signature, index)
    }
    return index
  }
}

function wellFormedPage(page: unknown): page is MetaPageRow {
  if (page === null || typeof page !== 'object') return false
  const p = page as Partial<MetaPageRow>
  const n = Array.isArray(p.uids) ? p.uids.length : -1
  const sized = (value: unknown) => Array.isArray(value) && value.length === n
  return (
    n >= 0 &&
    Array.isArray(p.key) &&
    sized(p.created) &&
    sized(p.updated) &&
    sized(p.revs) &&
    sized(p.clocks) &&
    Array.isArray(p.clockSets) &&
    p.base !== null &&
    typeof p.base === 'object' &&
    Object.values(p.base).every(sized)
  )
}

/** The metadata of entry `i` of a page, as an `m_` row would hold it. */
function entryMeta(page: MetaPageRow, i: number): MetaRow {
  const base: Record<string, number> = {}
  for (const [key, values] of Object.entries(page.base)) base[key] = values[i]!
  return {
    uid: page.uids[i]!,
    created_at: page.created[i]!,
    updated_at: page.updated[i]!,
    deleted_at: null,
    rev: page.revs[i]!,
    clocks: { ...(page.clockSets[page.clocks[i]!] ?? {}) },
    pending: {},
    base,
    deltas: {},
    pendingDelete: false,
  }
}

/** The position of `uid` in a page's sorted uids, or -1. */
function positionIn(page: MetaPageRow, uid: string): number {
  const { uids } = page
  let low = 0
  let high = uids.length - 1
  while (low <= high) {
    const middle = (low + high) >> 1
    const value = uids[middle]!
    if (value === uid) return middle
    if (value < uid) low = middle + 1
    else high = middle - 1
  }
  return -1
}

/** Where each uid is listed: its page (the newest, should several list it) and position. */
async function locate(
  db: LocalDb,
  model: ModelInfo,
  uids: readonly string[],
): Promise<Map<string, { page: MetaPageRow; position: number }>> {
  const found = new Map<string, { page: MetaPageRow; position: number }>()
  if (uids.length === 0) return found
  let low = uids[0]!
  let high = uids[0]!
  for (const uid of uids) {
    if (uid < low) low = uid
    if (uid > high) high = uid
  }
  // The keys of every page that starts at or before the highest uid, then those that reach the lowest.
  const keys = (await db.pages(model).where(':id').below([high, Dexie.maxKey]).primaryKeys()) as PageKey[]
  const candidates = keys.filter((key) => key[1] >= low)
  if (candidates.length === 0) return found
  const covering = new Map<string, PageKey[]>()
  for (const uid of uids) {
    const holding = candidates.filter((key) => key[0] <= uid && uid <= key[1])
    if (holding.length > 0) covering.set(uid, holding)
  }
  const needed = [...new Set([...covering.values()].flat())]
  if (needed.length === 0) return found
  const pages = await db.pages(model).bulkGet(needed)
  const byKey = new Map<PageKey, MetaPageRow>()
  needed.forEach((key, i) => {
    const page = pages[i]
    if (wellFormedPage(page)) byKey.set(key, page)
  })
  for (const [uid, holding] of covering) {
    let best: { page: MetaPageRow; position: number } | undefined
    for (const key of holding) {
      const page = byKey.get(key)
      const position = page ? positionIn(page, uid) : -1
      if (page && position >= 0 && (!best || key[2] > best.page.key[2])) best = { page, position }
    }
    if (best) found.set(uid, best)
  }
  return found
}

/** The page metadata of `uids` (only those some page lists). */
export async function pageMetas(
  db: LocalDb,
  model: ModelInfo,
  uids: readonly string[],
): Promise<Map<string, MetaRow>> {
  const found = new Map<string, MetaRow>()
  for (const [uid, { page, position }] of await locate(db, model, uids))
    found.set(uid, entryMeta(page, position))
  return found
}

/**
 * Takes records out of their pages (their row and `m_` row are gone, or going in the same
 * transaction): a page that lists none of them any more is deleted, the others rewritten.
 */
export async function dropFromPages(db: LocalDb, model: ModelInfo, uids: readonly string[]): Promise<void> {
  const located = await locate(db, model, uids)
  if (located.size === 0) return
  const drop = new Map<MetaPageRow, Set<number>>()
  for (const { page, position } of located.values()) {
    const positions = drop.get(page) ?? new Set<number>()
    positions.add(position)
    drop.set(page, positions)
  }
  for (const [page, positions] of drop) {
    await db.pages(model).delete(page.key)
    const keep = page.uids.map((_, i) => i).filter((i) => !positions.has(i))
    if (keep.length === 0) continue
    const pick = <T>(values: T[]) => keep.map((i) => values[i]!)
    const uidsLeft = pick(page.uids)
    const base: Record<string, number[]> = {}
    for (const [key, values] of Object.entries(page.base)) base[key] = pick(values)
    await db.pages(model).add({
      ...page,
      key: [uidsLeft[0]!, uidsLeft.at(-1)!, page.key[2]],
      uids: uidsLeft,
      created: pick(page.created),
      updated: pick(page.updated),
      revs: pick(page.revs),
      clocks: pick(page.clocks),
      base,
    })
  }
}

/**
 * The metadata of records, in the order of `uids`: the `m_` row, else (for records whose row
 * exists: `rows[i]`) the page entry. Undefined where there is none.
 */
export async function readMetas(
  db: LocalDb,
  model: ModelInfo,
  uids: readonly string[],
  rows: ReadonlyArray<Row | undefined>,
): Promise<Array<MetaRow | undefined>> {
  const metas = await db.meta(model).bulkGet([...uids])
  const missing = uids.filter((_, i) => metas[i] === undefined && rows[i] !== undefined)
  if (missing.length === 0) return metas
  const paged = await pageMetas(db, model, missing)
  return metas.map((meta, i) => meta ?? paged.get(uids[i]!))
}

/** A record's row and metadata, read together (the pages are only looked at when needed). */
export async function readRowAndMeta(
  db: LocalDb,
  model: ModelInfo,
  uid: string,
): Promise<[Row | undefined, MetaRow | undefined]> {
  const [row, meta] = await Promise.all([db.records(model).get(uid), db.meta(model).get(uid)])
  if (meta || !row) return [row, meta]
  return [row, (await pageMetas(db, model, [uid])).get(uid)]
}

/**
 * Every metadata row of a model: `stored`, the `m_` rows (as stored, possibly malformed: callers
 * check), and `byUid`, those plus, for uids without one, their page entry. Page entries are
 * returned whether or not the record's row exists: callers go by the rows.
 */
export async function readAllMetas(
  db: LocalDb,
  model: ModelInfo,
): Promise<{ stored: unknown[]; byUid: Map<string, unknown> }> {
  const [metas, pages] = await Promise.all([db.meta(model).toArray(), db.pages(model).toArray()])
  const newest = new Map<string, { page: MetaPageRow; position: number }>()
  const wellFormed = pages.filter(wellFormedPage).sort((a, b) => (a.key[2] < b.key[2] ? -1 : 1))
  for (const page of wellFormed) {
    for (let i = 0; i < page.uids.length; i++) newest.set(page.uids[i]!, { page, position: i })
  }
  const all = new Map<string, unknown>()
  for (const [uid, { page, position }] of newest) all.set(uid, entryMeta(page, position))
  for (const meta of metas) all.set((meta as { uid?: string })?.uid ?? '', meta)
  return { stored: metas, byUid: all }
}
