import type { Json } from '@tidesync/ipc'
import type { PgTable } from 'drizzle-orm/pg-core'
import { WriteBufferError } from '../errors.js'
import { claimReceipts } from '../flush/batch-ledger.js'
import type { Executor } from '../flush/sql-util.js'
import type { ReadCell, ReadManyOptions } from '../read/read-many.js'
import type { EncodedKey, TableMeta } from '../store/table-meta.js'
import type { FlushReport } from '../types.js'

type Columns<T extends PgTable> = T['_']['columns']

/** The drizzle property names of a table's columns. */
export type ColumnKey<T extends PgTable> = keyof Columns<T> & string

/** Columns `increment` accepts: number, bigint and numeric/decimal columns. */
export type NumericColumnKey<T extends PgTable> = {
  [K in ColumnKey<T>]: Columns<T>[K]['_']['dataType'] extends 'number' | 'bigint'
    ? K
    : Columns<T>[K]['_']['columnType'] extends `PgNumeric${string}`
      ? K
      : never
}[ColumnKey<T>]

/** A primary key value (single-column key) or an object with every key column. */
export type KeyInput<T extends PgTable> = string | number | bigint | Date | Partial<T['$inferSelect']>

/** `update()` fields: any columns of the table, at least one. */
export type UpdateFields<T extends PgTable> = Partial<T['$inferInsert']>

/** An increment given with a receipt: applied to the database at most once per receipt. */
export interface ReceiptedIncrement<T extends PgTable = PgTable> {
  key: KeyInput<T>
  column: NumericColumnKey<T>
  delta: number | bigint
  receipt: string
}

/** What `redeliver` did with each receipt. */
export interface RedeliveryReport {
  /** Given to the buffer (again): pending now, applied by a coming flush unless already pending. */
  delivered: string[]
  /** Already applied to the database: not given again. */
  alreadyApplied: string[]
}

/** Longest receipt accepted (they are stored in IPC fields and a ledger table). */
export const MAX_RECEIPT_LENGTH = 200

/** The operations a table buffer hands to its write buffer (one per durability mode). @internal */
export interface TableSink {
  increment(meta: TableMeta, key: EncodedKey, column: string, delta: number, receipt?: string): Promise<void>
  incrementMany(
    meta: TableMeta,
    items: { key: EncodedKey; column: string; delta: number; receipt: string }[],
  ): Promise<void>
  redeliver(
    meta: TableMeta,
    items: { key: EncodedKey; column: string; delta: number; receipt: string }[],
  ): Promise<RedeliveryReport>
  update(
    meta: TableMeta,
    key: EncodedKey,
    fields: Record<string, import('@tidesync/ipc').Json>,
  ): Promise<void>
  insert(meta: TableMeta, row: Record<string, Json>): Promise<void>
  get(meta: TableMeta, key: EncodedKey, column: string): Promise<unknown>
  getMany(
    meta: TableMeta,
    keys: EncodedKey[],
    columns: string[],
    options: ReadManyOptions,
  ): Promise<Array<Map<string, ReadCell>>>
  flush(meta: TableMeta): Promise<FlushReport>
}

/**
 * The buffered face of one drizzle table.
 *
 * @example
 * const posts = buffer.table(postsTable)
 * await posts.where(42).increment('views')
 * await posts.where(42).update({ lastViewedAt: new Date() })
 * await posts.insert({ postId: 42, action: 'view' })
 * await posts.where(42).get('views') // database value + pending delta
 */
export class TableBuffer<T extends PgTable> {
  /** @internal */
  constructor(
    /** @internal */ readonly meta: TableMeta,
    private readonly sink: TableSink,
  ) {}

  /** The buffer's id for this table: `connection.schema.table`. */
  get id(): string {
    return this.meta.id
  }

  /** Selects one row by its full primary key (a scalar for a one-column key, else an object). */
  where(key: KeyInput<T>): RowHandle<T> {
    return new RowHandle<T>(this.meta, this.meta.encodeKey(key), this.sink)
  }

  /**
   * `get()` of many rows and columns at once: one map per key (in order), column -> value, read
   * in one consistent window (the pending state once for all rows, the database values in one
   * query) instead of one window per row and column. With `{ onlyPending: true }` a map holds
   * only the columns that have an update or increments pending (their value is then what
   * `get()` gives; the others are the database's, which is not read); of a row that is neither
   * in the database nor queued for insert, only the columns with a pending update are given
   * (increments alone wait for the row and have no value yet). Inside a transaction that holds the
   * rows' locks, pass it and the rows as read (`{ db: tx, rows }`): they are then the base values
   * (see `ReadManyOptions`). Reads through a transaction bypass the buffer's read cache.
   *
   * @example
   * const [first, second] = await posts.getMany([1, 2], ['views', 'likes'])
   * first.get('views') // database value + pending delta
   */
  async getMany<K extends ColumnKey<T>>(
    keys: KeyInput<T>[],
    columns: K[],
    options: ReadManyOptions = {},
  ): Promise<Array<Map<K, T['$inferSelect'][K] | null>>> {
    const encoded = keys.map((key) => this.meta.encodeKey(key))
    for (const column of columns) this.meta.column(column)
    if (encoded.length === 0 || columns.length === 0) return encoded.map(() => new Map())
    const cells = await this.sink.getMany(this.meta, encoded, columns, options)
    return cells.map((row) => {
      const values = new Map<K, T['$inferSelect'][K] | null>()
      for (const [column, cell] of row) values.set(column as K, cell.value as T['$inferSelect'][K] | null)
      return values
    })
  }

  /**
   * Receipted increments of many rows in one step (one IPC call, or one journal group): each
   * as `where(key).increment(column, delta, { receipt })`. Every item is validated before any
   * is given.
   */
  async incrementMany(items: ReceiptedIncrement<T>[]): Promise<void> {
    const encoded = items
      .map((item) => ({
        key: this.meta.encodeKey(item.key),
        column: item.column as string,
        delta: checkIncrement(this.meta, item.column, item.delta),
        receipt: checkReceipt(this.meta, item.receipt),
      }))
      .filter((item) => item.delta !== 0)
    if (encoded.length > 0) await this.sink.incrementMany(this.meta, encoded)
  }

  /** Queues a row; rows are inserted in order, 1,000 per statement, at the next flush. */
  insert(row: T['$inferInsert']): Promise<void> {
    let encoded: Record<string, Json>
    try {
      encoded = this.meta.encodeRow(row)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.sink.insert(this.meta, encoded)
  }

  /** Flushes this table now (waits for the flush lock if another process holds it). */
  flush(): Promise<FlushReport> {
    return this.sink.flush(this.meta)
  }

  /**
   * Gives receipted increments again, e.g. after a crash that may or may not have happened
   * before they reached the buffer: under the table's flush lock, receipts the database has
   * applied are skipped, the others are given to the buffer (a receipt still pending is not
   * counted twice). Every item is validated before any is given.
   */
  async redeliver(items: ReceiptedIncrement<T>[]): Promise<RedeliveryReport> {
    const encoded = items.map((item) => ({
      key: this.meta.encodeKey(item.key),
      column: item.column as string,
      delta: checkIncrement(this.meta, item.column, item.delta),
      receipt: checkReceipt(this.meta, item.receipt),
    }))
    if (encoded.length === 0) return { delivered: [], alreadyApplied: [] }
    return this.sink.redeliver(this.meta, encoded)
  }

  /**
   * Records receipts as applied inside the caller's transaction `tx` (a drizzle transaction on
   * this table's database) and returns those that were not recorded before: the caller applies
   * only their increments itself (e.g. straight to the table when the buffer is unreachable),
   * and the buffer will then skip them. Rolled back with `tx`.
   */
  async claimReceipts(tx: unknown, receipts: string[]): Promise<Set<string>> {
    for (const receipt of receipts) checkReceipt(this.meta, receipt)
    return claimReceipts(tx as Executor, this.meta.id, receipts)
  }
}

/** A validated increment delta (a safe integer) of a numeric, writable column. */
function checkIncrement(meta: TableMeta, column: string, delta: unknown): number {
  const columnMeta = meta.column(column)
  if (!columnMeta.numeric) {
    throw new WriteBufferError(
      'WB_NOT_NUMERIC',
      `increment() needs a numeric column; "${column}" is not one.`,
      {
        table: meta.id,
      },
    )
  }
  if (meta.isKey(columnMeta) || columnMeta.generated) {
    throw new WriteBufferError('WB_UNKNOWN_COLUMN', `increment() cannot change column "${column}".`, {
      table: meta.id,
    })
  }
  const n =
    typeof delta === 'bigint' && delta >= Number.MIN_SAFE_INTEGER && delta <= Number.MAX_SAFE_INTEGER
      ? Number(delta)
      : delta
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw new WriteBufferError(
      'WB_INVALID_DELTA',
      `increment() takes a safe integer delta; got ${typeof delta === 'number' || typeof delta === 'bigint' ? String(delta) : typeof delta}.`,
      { table: meta.id },
    )
  }
  return n
}

function checkReceipt(meta: TableMeta, receipt: unknown): string {
  if (typeof receipt !== 'string' || receipt.length === 0 || receipt.length > MAX_RECEIPT_LENGTH) {
    throw new WriteBufferError(
      'WB_INVALID_RECEIPT',
      `An increment receipt must be a non-empty string of at most ${MAX_RECEIPT_LENGTH} characters; got ${typeof receipt === 'string' ? `${receipt.length} characters` : typeof receipt}.`,
      { table: meta.id },
    )
  }
  return receipt
}

/** One row of a buffered table. */
export class RowHandle<T extends PgTable> {
  /** @internal */
  constructor(
    private readonly meta: TableMeta,
    private readonly key: EncodedKey,
    private readonly sink: TableSink,
  ) {}

  /**
   * Adds `delta` (a safe integer, default 1) to a numeric column. Deltas of a row and column
   * merge; the flush adds their sum in one statement for many rows.
   *
   * With `{ receipt }` (an id unique within the table, e.g. the id of the change that caused
   * it), the increment is applied to the database at most once however often it is given: a
   * repeat while it is pending is ignored, and the flush records the receipt in the same
   * transaction (ledger `tidesync_write_buffer_receipts`, kept `ledgerRetentionMs`) and skips
   * receipts already recorded. Use it to hand over an increment whose delivery must be retried
   * after a crash (see `redeliver`).
   */
  async increment(
    column: NumericColumnKey<T>,
    delta: number | bigint = 1,
    options: { receipt?: string } = {},
  ): Promise<void> {
    const n = checkIncrement(this.meta, column, delta)
    const receipt = options.receipt === undefined ? undefined : checkReceipt(this.meta, options.receipt)
    if (n === 0) return
    await this.sink.increment(this.meta, this.key, column, n, receipt)
  }

  /** Sets columns; the last write of each column wins; one UPDATE per row at the flush. */
  async update(fields: UpdateFields<T>): Promise<void> {
    if (
      fields === null ||
      typeof fields !== 'object' ||
      Object.values(fields).every((v) => v === undefined)
    ) {
      throw new WriteBufferError('WB_EMPTY_UPDATE', 'update() needs at least one column.', {
        table: this.meta.id,
      })
    }
    const encoded = this.meta.encodeFields(this.meta.withOnUpdate(fields as Record<string, unknown>), true)
    await this.sink.update(this.meta, this.key, encoded)
  }

  /**
   * What the column will hold once everything pending is flushed: the pending update of the
   * column, else the database value, else (a row still queued by `insert()`) the queued value
   * or the column's default (`null` for an SQL default such as `defaultNow()`); plus the
   * pending increments. `null` when the row is neither in the database nor queued for insert
   * and no update of the column is pending (increments of such a row wait for the row: they
   * are not counted). Rejects with `WB_READ_FAILED` when the database cannot be read.
   */
  async get<K extends ColumnKey<T>>(column: K): Promise<T['$inferSelect'][K] | null> {
    this.meta.column(column)
    return (await this.sink.get(this.meta, this.key, column)) as T['$inferSelect'][K] | null
  }
}
