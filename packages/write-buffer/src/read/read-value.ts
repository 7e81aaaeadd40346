import type { Ipc, Json } from '@tidesync/ipc'
import { and, eq, is, SQL } from 'drizzle-orm'
import { WriteBufferError } from '../errors.js'
import { appliedReceipts } from '../flush/batch-ledger.js'
import {
  emptyPlan,
  listBatches,
  mergeBatch,
  type OpRecord,
  opsOf,
  type Plan,
  parseReceiptField,
  pendingDelta,
} from '../flush/plan.js'
import { describeError, type Executor } from '../flush/sql-util.js'
import { addDelta, decodeValue, encodeValue } from '../store/codec.js'
import { decodeInsertItem, runRows } from '../store/insert-items.js'
import type { KeyLayout, PendingKind } from '../store/keys.js'
import { readVersion } from '../store/seqlock.js'
import { type ColumnMeta, type EncodedKey, rowField, rowId, type TableMeta } from '../store/table-meta.js'
import type { AnyPgDatabase } from '../types.js'
import type { BaseCache } from './base-cache.js'

export interface ReadContext {
  ipc: Ipc
  keys: KeyLayout
  cache: BaseCache
  now: () => number
  readWaitMs: number
}

/**
 * `get(column)` of one row: what the flushes of everything pending will leave in the column.
 * The base is the pending update of the column, else the database value, else (no such row in
 * the database) the row's first queued insert (its value, or the column's default); then the
 * pending increments are added (in flight and pending, merged in order exactly as the flush
 * will apply them: inserts first, then updates, then increments). Null when there is no base.
 * The database is not read when a pending update gives the value, or when the cache holds it
 * for the current seqlock version. A failed database read rejects with `WB_READ_FAILED`.
 */
export async function readValue(
  ctx: ReadContext,
  meta: TableMeta,
  db: AnyPgDatabase,
  key: EncodedKey,
  column: string,
): Promise<unknown> {
  const columnMeta = meta.column(column)
  const seq = ctx.keys.seqlock(meta.id)
  const deadline = ctx.now() + ctx.readWaitMs
  const cacheKey = `${meta.id}\0${rowField(key, column)}`
  for (let attempt = 0; ; attempt++) {
    const version = await readVersion(ctx.ipc, seq)
    if (version % 2 === 1) {
      if (ctx.now() > deadline) {
        throw new WriteBufferError(
          'WB_TIMEOUT',
          `get() on ${meta.id} waited too long for a flush to commit.`,
          {
            table: meta.id,
          },
        )
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, 2 + attempt)))
      continue
    }
    const plan = await readPendingRow(ctx, meta.id, key, column)
    const change = plan.rows.get(rowId(key))
    let delta = pendingDelta(change, column)
    // A receipt its caller applied itself (`claimReceipts`), or given again after its flush,
    // is still pending until the next flush drops it: it does not count.
    const receipted = [...(change?.receipted ?? [])].filter(([, increment]) => increment.column === column)
    if (receipted.length > 0) {
      const applied = await readDatabase(meta, () =>
        appliedReceipts(
          db as unknown as Executor,
          meta.id,
          receipted.map(([receipt]) => receipt),
        ),
      )
      for (const [receipt, increment] of receipted) if (applied.has(receipt)) delta -= increment.delta
    }
    let base: { value: unknown; exists: boolean } | undefined
    let fromDatabase = false
    if (change?.set.has(column)) {
      base = { value: decodeValue(columnMeta.column, change.set.get(column) as Json), exists: true }
    } else {
      base = ctx.cache.get(cacheKey, version)
      if (!base) {
        base = await readDatabase(meta, () => readBase(meta, db, key, column))
        fromDatabase = true
      }
    }
    // Not in the database (yet): a row still queued for insert is what the flush starts from.
    const queued = base.exists ? undefined : await readQueuedInsert(ctx, meta, key)
    if ((await readVersion(ctx.ipc, seq)) !== version) continue
    if (fromDatabase) ctx.cache.set(cacheKey, version, base.value, base.exists)
    if (queued) base = { value: queuedValue(columnMeta, queued), exists: true }
    if (!base.exists) return base.value
    if (delta === 0n) return base.value
    return addDelta(base.value ?? zeroOf(columnMeta.column.dataType), delta)
  }
}

/** Runs a database read of `get()`; its failure becomes a `WB_READ_FAILED` with the cause. */
async function readDatabase<T>(meta: TableMeta, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (error) {
    throw new WriteBufferError(
      'WB_READ_FAILED',
      `get() on ${meta.id} could not read the database: ${describeError(error)}`,
      { cause: error, table: meta.id },
    )
  }
}

/**
 * The first queued insert (in flight, oldest batch first, then pending) of the row `key`, or
 * undefined. The first one is the one the flush inserts (later ones with the same key are
 * refused as poison rows). Rows that leave a key column to the database cannot match.
 */
async function readQueuedInsert(
  ctx: ReadContext,
  meta: TableMeta,
  key: EncodedKey,
): Promise<Record<string, Json> | undefined> {
  const { ipc, keys } = ctx
  const id = rowId(key)
  const find = async (keyOf: (kind: PendingKind) => string, kinds: PendingKind[]) => {
    for (const kind of kinds) {
      if (kind !== 'ins' && kind !== 'ops') continue
      for (const item of await ipc.lrange(keyOf(kind), 0, -1)) {
        const rows =
          kind === 'ins'
            ? decodeInsertItem(item).flatMap((run) => runRows(meta, run))
            : opsOf(item).flatMap((op) => (op[2] === 'n' ? [op[3]] : []))
        for (const row of rows) {
          const rowKey = meta.keyColumns.map((c) => row[c.key])
          if (rowKey.every((part) => part !== undefined && part !== null) && rowId(rowKey as Json[]) === id)
            return row
        }
      }
    }
    return undefined
  }
  for (const [batch, kinds] of await listBatches(ipc, keys, meta.id)) {
    const row = await find((kind) => keys.inflight(meta.id, batch, kind), kinds)
    if (row) return row
  }
  return find((kind) => keys.pending(meta.id, kind), ['ins', 'ops'])
}

/**
 * A column of a queued row: its value, else the column's default as the database will give
 * it (null for an SQL default such as `defaultNow()`, a sequence, or no default).
 */
function queuedValue(columnMeta: ColumnMeta, row: Record<string, Json>): unknown {
  const { column, key } = columnMeta
  if (Object.hasOwn(row, key)) return decodeValue(column, row[key] as Json)
  const fallback = column.hasDefault ? column.default : undefined
  if (fallback === undefined || fallback === null || is(fallback, SQL)) return null
  try {
    return decodeValue(column, encodeValue(column, key, fallback))
  } catch {
    return null
  }
}

/** Pending and in-flight state of one row and column, merged oldest first. */
async function readPendingRow(
  ctx: ReadContext,
  table: string,
  key: EncodedKey,
  column: string,
): Promise<Plan> {
  const { ipc, keys } = ctx
  const plan = emptyPlan()
  const field = rowField(key, column)
  const id = rowId(key)
  const read = async (keyOf: (kind: PendingKind) => string, kinds: PendingKind[]) => {
    const content: Partial<Record<PendingKind, Record<string, Json> | Json[]>> = {}
    for (const kind of kinds) {
      if (kind === 'inc' || kind === 'upd') {
        const value = await ipc.hget(keyOf(kind), field)
        if (value !== null) content[kind] = { [field]: value }
      } else if (kind === 'rct') {
        // Receipted increments are one field each: the table's whole hash is read and filtered
        // (like journal-mode ops), which stays small between two flushes.
        const all = await ipc.hgetall(keyOf(kind))
        content.rct = Object.fromEntries(
          Object.entries(all).filter(([f]) => {
            const parsed = parseReceiptField(f)
            return parsed !== null && parsed.column === column && rowId(parsed.key) === id
          }),
        )
      } else if (kind === 'ops') {
        const ops: OpRecord[] = (await ipc.lrange(keyOf(kind), 0, -1)).flatMap(opsOf)
        content.ops = ops.filter((op) => op[2] !== 'n' && rowId(op[3]) === id) as unknown as Json[]
      }
    }
    mergeBatch(plan, content)
  }
  for (const [batch, kinds] of await listBatches(ipc, keys, table)) {
    await read((kind) => keys.inflight(table, batch, kind), kinds)
  }
  await read((kind) => keys.pending(table, kind), ['upd', 'inc', 'rct', 'ops'])
  return plan
}

async function readBase(
  meta: TableMeta,
  db: AnyPgDatabase,
  key: EncodedKey,
  column: string,
): Promise<{ value: unknown; exists: boolean }> {
  const conditions = meta.keyColumns.map((c, i) => eq(c.column, decodeValue(c.column, key[i] as Json)))
  const rows = await db
    .select({ value: meta.column(column).column })
    .from(meta.table)
    .where(and(...conditions))
    .limit(1)
  const [row] = rows
  return row ? { value: row.value, exists: true } : { value: null, exists: false }
}

function zeroOf(dataType: string): unknown {
  if (dataType === 'bigint') return 0n
  if (dataType === 'string') return '0'
  return 0
}
