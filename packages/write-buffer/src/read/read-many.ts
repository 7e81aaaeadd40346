import type { Ipc, Json } from '@tidesync/ipc'
import { and, eq, inArray, is, or, SQL, sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { WriteBufferError } from '../errors.js'
import { appliedReceipts } from '../flush/batch-ledger.js'
import {
  type BatchContent,
  emptyPlan,
  mergeBatch,
  type OpRecord,
  opsOf,
  type Plan,
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
import type { InflightBatchList } from './batch-list.js'

export interface ReadContext {
  ipc: Ipc
  keys: KeyLayout
  cache: BaseCache
  /** Listings of in-flight batches, shared by the reads of one buffer. */
  batches: InflightBatchList
  now: () => number
  readWaitMs: number
}

/** Options of `readMany` (and of `TableBuffer.getMany`). */
export interface ReadManyOptions {
  /** Leave out the rows and columns with nothing pending (see `readMany`). @default false */
  onlyPending?: boolean
  /**
   * Where the database reads go instead of the table's database: the caller's transaction, when
   * it reads inside one (with `rows`).
   */
  db?: unknown
  /**
   * The rows as the caller read them, in order of the keys (null: not read, or not there),
   * inside the transaction `db` while it holds their row locks (`SELECT ... FOR UPDATE`). They
   * are the base values of these rows: no flush can change them before that transaction ends
   * (its UPDATE waits for the locks), and a flush that committed before the locks were taken
   * is done with its in-flight state once the seqlock is even, so the pending state read in the
   * window is exactly what the rows do not hold yet.
   */
  rows?: Array<Record<string, unknown> | null | undefined>
}

/** One row and column as `readMany` found it. */
export interface ReadCell {
  /** What `get(column)` gives. */
  value: unknown
  /** An update or increments are pending for it (or the row is still queued for insert). */
  pending: boolean
}

/** Keys per database query of base values. */
const BASE_CHUNK = 500

/**
 * `get(column)` of many rows and columns, read in one consistent window: what the flushes of
 * everything pending will leave in each column. The base is the pending update of the column,
 * else the database value, else (no such row in the database) the row's first queued insert
 * (its value, or the column's default); then the pending increments are added (in flight and
 * pending, merged in order exactly as the flush will apply them: inserts first, then updates,
 * then increments). Null when there is no base.
 *
 * One pass serves every row and column: the pending state is read once per in-flight batch and
 * once for the pending keys (`hmget` of the rows' fields, the receipted increments' hash once,
 * the journal list once), the receipts already applied in one query, and the base values of
 * every row in one query (or from the cache, for the current seqlock version). The reads of a
 * window happen between two even, equal readings of the table's seqlock (see store/seqlock.ts),
 * so no delta is counted twice (in flight and already committed) nor missed.
 *
 * With `onlyPending`, a row and column with nothing pending is left out (its value is the
 * database's, which is then not read), and so are the increments of a row that is neither in
 * the database nor queued for insert (they wait for the row); its pending updates stay. With
 * `db`, the read cache is neither read nor written. A failed database read rejects with `WB_READ_FAILED`.
 *
 * Returns one map per key (same order), column -> cell.
 */
export async function readMany(
  ctx: ReadContext,
  meta: TableMeta,
  db: AnyPgDatabase,
  keys: EncodedKey[],
  columns: string[],
  options: ReadManyOptions = {},
): Promise<Array<Map<string, ReadCell>>> {
  const onlyPending = options.onlyPending ?? false
  // Inside the caller's transaction the database may hold its uncommitted writes (and forget
  // them on a rollback): what it reads there is neither taken from nor put in the shared cache.
  const useCache = options.db === undefined
  if (options.db) db = options.db as AnyPgDatabase
  /** Rows the caller read itself, locked in its transaction (see `ReadManyOptions.rows`). */
  const given = new Map<string, Record<string, unknown>>()
  options.rows?.forEach((row, i) => {
    if (row) given.set(rowId(keys[i]!), row)
  })
  const columnMetas = columns.map((column) => meta.column(column))
  /** Each distinct row once, by row id. */
  const rows = new Map<string, EncodedKey>()
  for (const key of keys) rows.set(rowId(key), key)
  const seq = ctx.keys.seqlock(meta.id)
  const deadline = ctx.now() + ctx.readWaitMs
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
    const batches = await ctx.batches.list(ctx.ipc, ctx.keys, meta.id, version)
    const plan = await readPending(ctx, meta.id, batches, rows, columns)
    const deltas = await pendingDeltas(meta, db, plan, rows, columns)

    /** Cells whose base is the database's value (from the cache or read now), by row id. */
    const bases = new Map<string, Map<string, { value: unknown; exists: boolean }>>()
    /** Columns to read from the database, by row id. */
    const toRead = new Map<string, string[]>()
    for (const [id, key] of rows) {
      const change = plan.rows.get(id)
      for (const column of columns) {
        if (change?.set.has(column)) continue
        if (onlyPending && !deltas.get(id)?.has(column)) continue
        const row = given.get(id)
        if (row) {
          cellsOf(bases, id).set(column, { value: row[column], exists: true })
          continue
        }
        const cached = useCache ? ctx.cache.get(cacheKey(meta, key, column), version) : undefined
        if (cached) cellsOf(bases, id).set(column, cached)
        else {
          const list = toRead.get(id)
          if (list) list.push(column)
          else toRead.set(id, [column])
        }
      }
    }
    const readColumns = [...new Set([...toRead.values()].flat())]
    const read = await readBases(
      meta,
      db,
      new Map([...toRead.keys()].map((id) => [id, rows.get(id)!])),
      readColumns,
    )
    for (const [id, list] of toRead) {
      const row = read.get(id)
      const cells = cellsOf(bases, id)
      for (const column of list)
        cells.set(column, row ? { value: row[column], exists: true } : { value: null, exists: false })
    }
    // Not in the database (yet): a row still queued for insert is what the flush starts from.
    const missing = new Set<string>()
    for (const [id, cells] of bases) {
      for (const base of cells.values()) if (!base.exists) missing.add(id)
    }
    const queued = missing.size > 0 ? await readQueuedInserts(ctx, meta, batches, missing) : new Map()
    if ((await readVersion(ctx.ipc, seq)) !== version) continue
    ctx.batches.remember(meta.id, version, batches)
    for (const [id, list] of useCache ? toRead : []) {
      const key = rows.get(id)!
      const cells = bases.get(id)!
      for (const column of list) {
        const base = cells.get(column)!
        ctx.cache.set(cacheKey(meta, key, column), version, base.value, base.exists)
      }
    }

    const byId = new Map<string, Map<string, ReadCell>>()
    for (const [id] of rows) {
      const change = plan.rows.get(id)
      const cells = new Map<string, ReadCell>()
      const queuedRow = queued.get(id)
      columnMetas.forEach((columnMeta, i) => {
        const column = columns[i]!
        const delta = deltas.get(id)?.get(column) ?? 0n
        const set = change?.set.has(column) === true
        let base: { value: unknown; exists: boolean } | undefined = set
          ? { value: decodeValue(columnMeta.column, change!.set.get(column) as Json), exists: true }
          : bases.get(id)?.get(column)
        if (base === undefined) return // onlyPending: nothing pending, the database value stands
        const fromQueue = !base.exists && queuedRow !== undefined
        if (fromQueue) base = { value: queuedValue(columnMeta, queuedRow), exists: true }
        const pending = set || delta !== 0n || fromQueue
        if (onlyPending && (!pending || !base.exists)) return
        const value =
          !base.exists || delta === 0n
            ? base.value
            : addDelta(base.value ?? zeroOf(columnMeta.column.dataType), delta)
        cells.set(column, { value, pending })
      })
      byId.set(id, cells)
    }
    return keys.map((key) => byId.get(rowId(key))!)
  }
}

function cellsOf<T>(map: Map<string, Map<string, T>>, id: string): Map<string, T> {
  let cells = map.get(id)
  if (!cells) {
    cells = new Map()
    map.set(id, cells)
  }
  return cells
}

function cacheKey(meta: TableMeta, key: EncodedKey, column: string): string {
  return `${meta.id}\0${rowField(key, column)}`
}

/**
 * The pending increments of each row and column (plain and receipted, in flight and pending),
 * without the receipts a database already applied (its caller applied one itself with
 * `claimReceipts`, or it was given again after its flush: it stays pending until the next flush
 * drops it, and does not count). Zero sums are left out.
 */
async function pendingDeltas(
  meta: TableMeta,
  db: AnyPgDatabase,
  plan: Plan,
  rows: Map<string, EncodedKey>,
  columns: string[],
): Promise<Map<string, Map<string, bigint>>> {
  const deltas = new Map<string, Map<string, bigint>>()
  const receipted: Array<{ id: string; column: string; receipt: string; delta: bigint }> = []
  for (const [id] of rows) {
    const change = plan.rows.get(id)
    if (!change) continue
    for (const column of columns) {
      const delta = pendingDelta(change, column)
      if (delta !== 0n) cellsOf(deltas, id).set(column, delta)
    }
    for (const [receipt, increment] of change.receipted) {
      if (columns.includes(increment.column))
        receipted.push({ id, column: increment.column, receipt, delta: increment.delta })
    }
  }
  if (receipted.length === 0) return deltas
  const applied = await readDatabase(meta, () =>
    appliedReceipts(
      db as unknown as Executor,
      meta.id,
      receipted.map((r) => r.receipt),
    ),
  )
  for (const { id, column, receipt, delta } of receipted) {
    if (!applied.has(receipt)) continue
    const cells = cellsOf(deltas, id)
    const left = (cells.get(column) ?? 0n) - delta
    if (left === 0n) cells.delete(column)
    else cells.set(column, left)
  }
  return deltas
}

/** Runs a database read of `get()`; its failure becomes a `WB_READ_FAILED` with the cause. */
async function readDatabase<T>(meta: TableMeta, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (error) {
    if (error instanceof WriteBufferError) throw error
    throw new WriteBufferError(
      'WB_READ_FAILED',
      `get() on ${meta.id} could not read the database: ${describeError(error)}`,
      { cause: error, table: meta.id },
    )
  }
}

/**
 * The pending and in-flight state of the rows (their fields of `columns`, and every journal
 * operation of theirs), merged oldest first: the in-flight batches, then the pending keys. Every
 * source is read at once (on Redis, one round trip with auto-pipelining).
 */
async function readPending(
  ctx: ReadContext,
  table: string,
  batches: Map<string, PendingKind[]>,
  rows: Map<string, EncodedKey>,
  columns: string[],
): Promise<Plan> {
  const { ipc, keys } = ctx
  const fields: string[] = []
  /** `[column, ...key]` as JSON without its `[`: how a receipt field ends (see `receiptField`). */
  const receiptTails = new Set<string>()
  for (const key of rows.values()) {
    for (const column of columns) {
      const field = rowField(key, column)
      fields.push(field)
      receiptTails.add(field.slice(1))
    }
  }
  const read = async (keyOf: (kind: PendingKind) => string, kinds: PendingKind[]): Promise<BatchContent> => {
    const content: BatchContent = {}
    await Promise.all(
      kinds.map(async (kind) => {
        if (kind === 'inc' || kind === 'upd') {
          const values = await ipc.hmget(keyOf(kind), ...fields)
          const found: Record<string, Json> = {}
          values.forEach((value, i) => {
            if (value !== null) found[fields[i]!] = value
          })
          content[kind] = found
        } else if (kind === 'rct') {
          // One field per receipted increment: the table's hash is read once and filtered
          // (it holds what arrived since the last flush).
          const all = await ipc.hgetall(keyOf(kind))
          const found: Record<string, Json> = {}
          for (const field of Object.keys(all)) {
            const tail = afterReceipt(field)
            if (tail !== null && receiptTails.has(tail)) found[field] = all[field]!
          }
          content.rct = found
        } else if (kind === 'ops') {
          const ops: OpRecord[] = (await ipc.lrange(keyOf(kind), 0, -1)).flatMap(opsOf)
          content.ops = ops.filter((op) => op[2] !== 'n' && rows.has(rowId(op[3]))) as unknown as Json[]
        }
      }),
    )
    return content
  }
  const contents = await Promise.all([
    ...[...batches].map(([batch, kinds]) => read((kind) => keys.inflight(table, batch, kind), kinds)),
    read((kind) => keys.pending(table, kind), ['upd', 'inc', 'rct', 'ops']),
  ])
  const plan = emptyPlan()
  for (const content of contents) mergeBatch(plan, content)
  return plan
}

/**
 * What follows the receipt in a receipt field (`["receipt","column",...key]`): `"column",...key]`,
 * or null when the field does not start with a JSON string. Cheaper than parsing every field
 * of the hash (`JSON.stringify` writes the receipt's quotes and backslashes escaped).
 */
function afterReceipt(field: string): string | null {
  if (field.charCodeAt(0) !== 91 || field.charCodeAt(1) !== 34) return null
  for (let i = 2; i < field.length; i++) {
    const c = field.charCodeAt(i)
    if (c === 92) i++
    else if (c === 34) return field.charCodeAt(i + 1) === 44 ? field.slice(i + 2) : null
  }
  return null
}

/**
 * The database values of `columns` of the rows (by row id; a row that is not there has no
 * entry), in one query per chunk of keys. A row the query did not give back is read alone: it
 * may be missing, or its key may be written differently from how the database returns it.
 */
async function readBases(
  meta: TableMeta,
  db: AnyPgDatabase,
  rows: Map<string, EncodedKey>,
  columns: string[],
): Promise<Map<string, Record<string, unknown>>> {
  const found = new Map<string, Record<string, unknown>>()
  if (rows.size === 0 || columns.length === 0) return found
  const columnMetas = columns.map((column) => meta.column(column))
  const take = (raw: Record<string, unknown>, at: (i: number) => unknown): void => {
    let id: string
    try {
      id = rowId(meta.keyColumns.map((c, i) => encodeValue(c.column, c.key, at(i))))
    } catch {
      return
    }
    if (!rows.has(id)) return
    const values: Record<string, unknown> = {}
    columnMetas.forEach((c, i) => {
      values[c.key] = raw[`c${i}`]
    })
    found.set(id, values)
  }
  const entries = [...rows]
  if (meta.keyColumns.length === 1) {
    // One statement whatever the number of rows: the keys as one JSON parameter, the columns
    // named once; values decoded as drizzle decodes a selected row.
    const key = meta.keyColumns[0]!
    const list = [key, ...columnMetas]
      .map((c, i) => `${quote(c.name)} as ${i === 0 ? '"k0"' : `"c${i - 1}"`}`)
      .join(', ')
    for (let start = 0; start < entries.length; start += BASE_CHUNK) {
      const keys = entries.slice(start, start + BASE_CHUNK).map(([, k]) => k[0])
      const result = await readDatabase(meta, () =>
        db.execute(
          sql`select ${sql.raw(list)} from ${meta.sqlName} where ${sql.raw(quote(key.name))} = any(array(select jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb)::${sql.raw(key.sqlType)}))`,
        ),
      )
      for (const raw of (result as unknown as { rows: Array<Record<string, unknown>> }).rows) {
        const decoded: Record<string, unknown> = {}
        columnMetas.forEach((c, i) => {
          const value = raw[`c${i}`]
          decoded[`c${i}`] = value === null || value === undefined ? null : c.column.mapFromDriverValue(value)
        })
        const keyValue = raw.k0
        take(decoded, () =>
          keyValue === null || keyValue === undefined ? null : key.column.mapFromDriverValue(keyValue),
        )
      }
    }
  } else {
    const selection: Record<string, PgColumn> = {}
    meta.keyColumns.forEach((c, i) => {
      selection[`k${i}`] = c.column
    })
    columnMetas.forEach((c, i) => {
      selection[`c${i}`] = c.column
    })
    for (let start = 0; start < entries.length; start += BASE_CHUNK) {
      const chunk = entries.slice(start, start + BASE_CHUNK)
      const result = (await readDatabase(meta, () =>
        db
          .select(selection)
          .from(meta.table)
          .where(
            keysCondition(
              meta,
              chunk.map(([, key]) => key),
            ),
          ),
      )) as Array<Record<string, unknown>>
      for (const row of result) take(row, (i) => row[`k${i}`])
    }
  }
  for (const [id, key] of rows) {
    if (found.has(id)) continue
    const selection: Record<string, PgColumn> = {}
    columnMetas.forEach((c, i) => {
      selection[`c${i}`] = c.column
    })
    const conditions = meta.keyColumns.map((c, i) => eq(c.column, decodeValue(c.column, key[i] as Json)))
    const [row] = (await readDatabase(meta, () =>
      db
        .select(selection)
        .from(meta.table)
        .where(and(...conditions))
        .limit(1),
    )) as Array<Record<string, unknown>>
    if (!row) continue
    const values: Record<string, unknown> = {}
    columnMetas.forEach((c, i) => {
      values[c.key] = row[`c${i}`]
    })
    found.set(id, values)
  }
  return found
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`
}

function keysCondition(meta: TableMeta, keys: EncodedKey[]): SQL | undefined {
  if (meta.keyColumns.length === 1) {
    const { column } = meta.keyColumns[0]!
    return inArray(
      column,
      keys.map((key) => decodeValue(column, key[0] as Json)),
    )
  }
  return or(
    ...keys.map((key) =>
      and(...meta.keyColumns.map((c, i) => eq(c.column, decodeValue(c.column, key[i] as Json)))),
    ),
  )
}

/**
 * The first queued insert (in flight, oldest batch first, then pending) of each row, by row id.
 * The first one is the one the flush inserts (later ones with the same key are refused as
 * poison rows). Rows that leave a key column to the database cannot match.
 */
async function readQueuedInserts(
  ctx: ReadContext,
  meta: TableMeta,
  batches: Map<string, PendingKind[]>,
  ids: Set<string>,
): Promise<Map<string, Record<string, Json>>> {
  const { ipc, keys } = ctx
  const found = new Map<string, Record<string, Json>>()
  const find = async (keyOf: (kind: PendingKind) => string, kinds: PendingKind[]) => {
    for (const kind of kinds) {
      if (kind !== 'ins' && kind !== 'ops') continue
      for (const item of await ipc.lrange(keyOf(kind), 0, -1)) {
        const queued =
          kind === 'ins'
            ? decodeInsertItem(item).flatMap((run) => runRows(meta, run))
            : opsOf(item).flatMap((op) => (op[2] === 'n' ? [op[3]] : []))
        for (const row of queued) {
          const rowKey = meta.keyColumns.map((c) => row[c.key])
          if (!rowKey.every((part) => part !== undefined && part !== null)) continue
          const id = rowId(rowKey as Json[])
          if (ids.has(id) && !found.has(id)) found.set(id, row)
        }
        if (found.size === ids.size) return
      }
    }
  }
  for (const [batch, kinds] of batches) {
    await find((kind) => keys.inflight(meta.id, batch, kind), kinds)
    if (found.size === ids.size) return found
  }
  await find((kind) => keys.pending(meta.id, kind), ['ins', 'ops'])
  return found
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

function zeroOf(dataType: string): unknown {
  if (dataType === 'bigint') return 0n
  if (dataType === 'string') return '0'
  return 0
}
