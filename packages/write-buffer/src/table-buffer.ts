import type { PgTable } from 'drizzle-orm/pg-core'
import { WriteBufferError } from './errors.js'
import type { EncodedKey, TableMeta } from './table-meta.js'
import type { FlushReport } from './types.js'

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

/** The operations a table buffer hands to its write buffer (one per durability mode). @internal */
export interface TableSink {
  increment(meta: TableMeta, key: EncodedKey, column: string, delta: number): Promise<void>
  update(
    meta: TableMeta,
    key: EncodedKey,
    fields: Record<string, import('@tidesync/ipc').Json>,
  ): Promise<void>
  insert(meta: TableMeta, row: Record<string, import('@tidesync/ipc').Json>): Promise<void>
  get(meta: TableMeta, key: EncodedKey, column: string): Promise<unknown>
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

  /** Queues a row; rows are inserted in order, 1,000 per statement, at the next flush. */
  async insert(row: T['$inferInsert']): Promise<void> {
    const encoded = this.meta.encodeRow(row)
    await this.sink.insert(this.meta, encoded)
  }

  /** Flushes this table now (waits for the flush lock if another process holds it). */
  flush(): Promise<FlushReport> {
    return this.sink.flush(this.meta)
  }
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
   */
  async increment(column: NumericColumnKey<T>, delta: number | bigint = 1): Promise<void> {
    const meta = this.meta.column(column)
    if (!meta.numeric) {
      throw new WriteBufferError(
        'WB_NOT_NUMERIC',
        `increment() needs a numeric column; "${column}" is not one.`,
        {
          table: this.meta.id,
        },
      )
    }
    if (this.meta.isKey(meta) || meta.generated) {
      throw new WriteBufferError('WB_UNKNOWN_COLUMN', `increment() cannot change column "${column}".`, {
        table: this.meta.id,
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
        { table: this.meta.id },
      )
    }
    if (n === 0) return
    await this.sink.increment(this.meta, this.key, column, n)
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
   * The current value: the database value plus the pending delta, or the pending value.
   * Null when the row does not exist in the database (yet) and no update is pending for it.
   */
  async get<K extends ColumnKey<T>>(column: K): Promise<T['$inferSelect'][K] | null> {
    this.meta.column(column)
    return (await this.sink.get(this.meta, this.key, column)) as T['$inferSelect'][K] | null
  }
}
