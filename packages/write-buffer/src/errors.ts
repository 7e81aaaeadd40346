/** Every error the write buffer throws or reports. Check with `instanceof WriteBufferError`, branch on `code`. */
export type WriteBufferErrorCode =
  /** A column name the drizzle table does not have (or a key column where none is allowed). */
  | 'WB_UNKNOWN_COLUMN'
  /** A delta that is not a safe integer (NaN, Infinity, a fraction, a string, ...). */
  | 'WB_INVALID_DELTA'
  /** `increment` on a column that is not numeric. */
  | 'WB_NOT_NUMERIC'
  /** An increment receipt that is not a non-empty string of at most 200 characters. */
  | 'WB_INVALID_RECEIPT'
  /** `update` with no fields. */
  | 'WB_EMPTY_UPDATE'
  /** A value that does not fit its column (wrong type, null in a NOT NULL column, invalid Date). */
  | 'WB_INVALID_VALUE'
  /** `insert` without a column that is NOT NULL and has no default. */
  | 'WB_MISSING_COLUMN'
  /** `where` without the full primary key, with extra columns, or with a key of the wrong type. */
  | 'WB_INVALID_KEY'
  /** A bad option or table registration (unknown connection, no primary key, ...). */
  | 'WB_INVALID_OPTION'
  /** The flush lock could not be taken in time (`lockWaitMs`). */
  | 'WB_LOCK_TIMEOUT'
  /** `get` waited too long for a flush to finish its commit (`readWaitMs`). */
  | 'WB_TIMEOUT'
  /** `get` could not read the database (missing table, statement timeout, connection lost, ...): the driver's error is the `cause`. */
  | 'WB_READ_FAILED'
  /** A flush failed (database down, deadlock, ...): its data is kept and retried with backoff. */
  | 'WB_FLUSH_FAILED'
  /** A row in an insert batch violated a constraint: it was isolated and dead-lettered, the others were written. */
  | 'WB_POISON_ROW'
  /** An increment/update matched no row (yet); it is kept for later flushes, then dead-lettered. */
  | 'WB_ROW_NOT_FOUND'
  /** A recovered batch older than the ledger retention: applying it could double-apply, so it was dead-lettered. */
  | 'WB_STALE_BATCH'
  /** A checkpoint or journal (LMDB) operation failed. */
  | 'WB_DURABILITY'
  /** The buffer was closed. */
  | 'WB_CLOSED'

export class WriteBufferError extends Error {
  override readonly name: string = 'WriteBufferError'
  constructor(
    readonly code: WriteBufferErrorCode,
    message: string,
    options?: { cause?: unknown; table?: string; rows?: unknown[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.table = options?.table
    this.rows = options?.rows
  }
  /** The table the error concerns (its buffer id: `connection.schema.table`), when there is one. */
  readonly table: string | undefined
  /** The rows or operations concerned (poison rows, unmatched keys), when there are any. */
  readonly rows: unknown[] | undefined
}

/** A flush failure as WB_FLUSH_FAILED (a WriteBufferError as it is). @internal */
export function asFlushError(error: unknown, table: string | undefined): WriteBufferError {
  if (error instanceof WriteBufferError) return error
  return new WriteBufferError(
    'WB_FLUSH_FAILED',
    `Flush failed: ${(error as Error)?.message ?? String(error)}`,
    {
      cause: error,
      table,
    },
  )
}

/** A checkpoint or journal failure as WB_DURABILITY (a WriteBufferError as it is). @internal */
export function durabilityError(what: string, error: unknown): WriteBufferError {
  if (error instanceof WriteBufferError) return error
  return new WriteBufferError('WB_DURABILITY', `${what}: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  })
}
