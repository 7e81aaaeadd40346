import type { PullResult, Tombstone, Uid, Where } from '@tidesync/protocol'
import { and, asc, count, eq, gt, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { changesAfter, currentRevision, prunedRevision } from '../db/revisions-read.js'
import { isTrue } from '../db/sql.js'
import { withSyncLock } from '../db/sync-lock.js'
import { rowsOf } from '../db/types.js'
import { TidesyncError } from '../errors.js'
import { rowToWire, tombstoneOf } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { buildFilter, type Filter } from '../model/scope.js'
import { type Checkpoint, logCheckpoint, parseCheckpoint, snapshotCheckpoint } from '../read/checkpoint.js'
import { columnsOf, type PageState, parseFormat, recordsOf } from '../read/page-encoding.js'
import { ReadAhead } from '../read/read-ahead.js'
import { type RowWithMeta, readLoggedRecords, readRecords } from '../read/records.js'
import { resolveModel } from '../validation/records.js'
import { expectObject, onlyKeys, optionalPositiveInt } from '../validation/shapes.js'

/**
 * `sync:pull`: what changed for a model+where since a checkpoint, one page at a time.
 *
 * From a revision checkpoint it reads the change log by (model, rev) — its cost follows the
 * number of changes, not the size of the collection — and sends per record: an upsert when the
 * record matches where+scope now, a tombstone when it was deleted, an eviction when it no
 * longer matches. Tombstones and evictions go only to callers for whom the record matched at
 * the checkpoint or since (its state before each logged change is kept), so nothing outside the
 * caller's scope is ever named. From checkpoint "0" it first loads every matching record in uid
 * order, then continues with the change log from the revision the load started at.
 */
export async function deltaPull<TCtx>(core: Core<TCtx>, request: unknown, ctx: TCtx): Promise<PullResult> {
  const input = expectObject(request, 'request')
  onlyKeys(input, ['model', 'where', 'checkpoint', 'limit', 'format'], '')
  const model = resolveModel(core, input.model)
  const limit = optionalPositiveInt(input.limit, 'limit', core.limits.maxPageSize) ?? core.limits.pageSize
  const filter = buildFilter(model, input.where as Where | undefined, ctx)
  const checkpoint = parseCheckpoint(input.checkpoint)
  const format = parseFormat(input.format)
  const c = core as Core
  const m = model as ResolvedModel<unknown>
  return withSyncLock(c, filter.key, async () => {
    const { states, ...page } =
      checkpoint.kind === 'log'
        ? await pullLog(c, m, filter, checkpoint.rev, limit)
        : await pullSnapshot(c, m, filter, checkpoint, input.checkpoint as string, limit)
    const now = new Date(core.now())
    const upserts =
      format === 'columns'
        ? { upserts: [], columns: columnsOf(m, states, now) }
        : { upserts: recordsOf(m, states, now) }
    return { ...upserts, ...page, serverClock: core.hlc.now() }
  })
}

/** A page before its upserts are encoded (`format`). */
type Page = Omit<PullResult, 'serverClock' | 'upserts' | 'columns'> & { states: PageState[] }

/**
 * A snapshot page read ahead: the rows after a checkpoint, read with `limit` (one more row than
 * that when more follow). It answers a request for at most `limit` records, or for any number
 * once it holds the snapshot's last rows.
 */
interface PageAhead {
  limit: number
  rows: RowWithMeta[]
}

/** The snapshot pages each server read ahead (see `read/read-ahead.ts`). */
const readAheads = new WeakMap<Core, ReadAhead<PageAhead>>()

function readAheadOf(core: Core): ReadAhead<PageAhead> {
  let readAhead = readAheads.get(core)
  if (!readAhead) {
    readAhead = new ReadAhead(() => core.now())
    readAheads.set(core, readAhead)
  }
  return readAhead
}

/** Snapshot pages read ahead of a client's requests (the next one, and the one after it). */
const READ_AHEAD_PAGES = 2

/** The next snapshot rows after `lastUid` (one more than `limit`: whether more follow). */
function snapshotRows(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Filter,
  lastUid: string | undefined,
  limit: number,
): Promise<RowWithMeta[]> {
  return readRecords(core, model, filter, {
    extra: lastUid === undefined ? undefined : gt(model.uid, lastUid),
    limit: limit + 1,
  })
}

/** The rows of a page read ahead, cut to `limit` (+1), when they can answer a request for `limit`. */
function rowsFor(ahead: PageAhead | undefined, limit: number): RowWithMeta[] | undefined {
  if (!ahead) return undefined
  const complete = ahead.rows.length <= ahead.limit
  if (ahead.limit < limit && !complete) return undefined
  return ahead.rows.length > limit + 1 ? ahead.rows.slice(0, limit + 1) : ahead.rows
}

async function pullSnapshot(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Filter,
  checkpoint: Exclude<Checkpoint, { kind: 'log' }>,
  checkpointText: string,
  limit: number,
): Promise<Page> {
  let snapRev: number
  let total: number
  let sent: number
  let lastUid: string | undefined
  let rows: RowWithMeta[]
  const readAhead = readAheadOf(core)
  const aheadKey = (text: string) => `${filter.key}\u0000${text}`
  if (checkpoint.kind === 'start') {
    snapRev = await currentRevision(core, model.name)
    // The count only says how far the load is: read beside the first page, not before it.
    const [counted, first] = await Promise.all([
      core.db.select({ n: count() }).from(model.table).where(filter.sql),
      snapshotRows(core, model, filter, undefined, limit),
    ])
    total = Number(counted[0]?.n ?? 0)
    sent = 0
    rows = first
  } else {
    ;({ snapRev, total, sent, lastUid } = checkpoint)
    const ahead = await readAhead.take(aheadKey(checkpointText))?.catch(() => undefined)
    rows = rowsFor(ahead, limit) ?? (await snapshotRows(core, model, filter, lastUid, limit))
  }
  const states = rows.slice(0, limit)
  const sentNow = sent + states.length
  if (rows.length > limit) {
    const last = String(states[states.length - 1]!.row.uid)
    const next = snapshotCheckpoint(snapRev, total, sentNow, last)
    // The client asks for that page next, as soon as this answer reaches it: read it now, and
    // the one after it once that is read (each page's query then overlaps the encoding and
    // sending of the page before it, instead of waiting for the request). After a first page,
    // read the server's page size at least: clients ask for a small first page (to show a
    // screen early), then for full ones.
    const aheadLimit = checkpoint.kind === 'start' ? Math.max(limit, core.limits.pageSize) : limit
    const readFrom = (after: string, sentBefore: number, depth: number): void => {
      const key = aheadKey(snapshotCheckpoint(snapRev, total, sentBefore, after))
      readAhead.start(key, async () => ({
        limit: aheadLimit,
        rows: await snapshotRows(core, model, filter, after, aheadLimit),
      }))
      if (depth <= 1) return
      readAhead.peek(key)?.then(
        (ahead) => {
          if (ahead.rows.length > ahead.limit) {
            readFrom(String(ahead.rows[ahead.limit - 1]!.row.uid), sentBefore + ahead.limit, depth - 1)
          }
        },
        () => {},
      )
    }
    readFrom(last, sentNow, READ_AHEAD_PAGES)
    return {
      states,
      deletes: [],
      evictions: [],
      checkpoint: next,
      hasMore: true,
      remaining: Math.max(total - sent, states.length),
    }
  }
  const logRemaining = await changesAfter(core, model.name, snapRev)
  return {
    states,
    deletes: [],
    evictions: [],
    checkpoint: logCheckpoint(snapRev),
    hasMore: logRemaining > 0,
    remaining: states.length + logRemaining,
  }
}

async function pullLog(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Filter,
  rev: number,
  limit: number,
): Promise<Page> {
  if (rev < (await prunedRevision(core, model.name))) {
    throw new TidesyncError(
      'CHECKPOINT_EXPIRED',
      'the change log no longer reaches back to this checkpoint: run sync:full',
    )
  }
  const { changes } = core.tables
  const entries = await core.db
    .select({ rev: changes.rev, uid: changes.uid, hasBefore: sql<boolean>`${changes.before} IS NOT NULL` })
    .from(changes)
    .where(and(eq(changes.model, model.name), gt(changes.rev, rev)))
    .orderBy(asc(changes.rev))
    .limit(limit + 1)
  const page = entries.slice(0, limit)
  if (page.length === 0) {
    return {
      states: [],
      deletes: [],
      evictions: [],
      checkpoint: logCheckpoint(rev),
      hasMore: false,
      remaining: 0,
    }
  }
  const remaining = await changesAfter(core, model.name, rev)
  const uids = [...new Set(page.map((e) => e.uid))]

  const lastRev = page[page.length - 1]!.rev

  // Which records matched where+scope before one of these changes (so the caller may hold them).
  // The page is every entry of the model in (rev, lastRev]: read by that range, not by a list.
  const matchedBefore = new Set<string>()
  const hasBefore = (e: (typeof page)[number]) => isTrue(e.hasBefore)
  if (page.some(hasBefore)) {
    if (!filter.sql) {
      for (const e of page) if (hasBefore(e)) matchedBefore.add(e.uid)
    } else {
      const alias = sql.identifier(model.tableName)
      const result = await core.db.execute(sql`
        SELECT DISTINCT l.uid FROM ${changes} l
        CROSS JOIN LATERAL jsonb_populate_record(NULL::${model.table}, l.before) AS ${alias}
        WHERE l.model = ${model.name} AND l.rev > ${rev} AND l.rev <= ${lastRev} AND l.before IS NOT NULL
          AND (${filter.sql})`)
      for (const row of rowsOf<{ uid: string }>(result)) matchedBefore.add(row.uid)
    }
  }

  // The records as they are now, with metadata, and whether they match now.
  const current = await readLoggedRecords(core, model, filter, uids)
  const liveRows = current.flatMap((c) => (c.row ? [c.row] : []))
  const overlaid = await core.pending.overlay(model, liveRows)
  const byUid = new Map(current.map((c) => [c.uid, c]))

  const states: PageState[] = []
  const deletes: Tombstone[] = []
  const evictions: Uid[] = []
  for (const uid of uids) {
    const now = byUid.get(uid)
    if (!now) continue
    const matchedNow =
      now.row && overlaid.has(now.row) ? filter.matches(rowToWire(model, now.row)) : now.matched
    const seen = matchedNow || matchedBefore.has(uid)
    if (now.meta.deleted_at || !now.row) {
      if (seen) deletes.push(tombstoneOf(uid, now.meta))
    } else if (matchedNow) {
      states.push({ row: now.row, meta: now.meta })
    } else if (seen) {
      evictions.push(uid)
    }
  }
  return {
    states,
    deletes,
    evictions,
    checkpoint: logCheckpoint(lastRev),
    hasMore: entries.length > limit,
    remaining,
  }
}
