import type { Ipc, Logger } from '@tidesync/ipc'
import type { PgDatabase, PgQueryResultHKT, PgTable } from 'drizzle-orm/pg-core'
import type { WriteBufferError } from './errors.js'

export type { Logger } from '@tidesync/ipc'

/** Any drizzle Postgres database (PGlite, node-postgres, postgres-js, ...). */
// biome-ignore lint/suspicious/noExplicitAny: any schema generic is accepted
export type AnyPgDatabase = PgDatabase<PgQueryResultHKT, any, any>

/** How pending state survives a crash of the process that holds it (memory and cluster drivers). */
export type Durability = 'checkpoint' | 'journal'

/** A table to register up front, so start-up recovery can flush its leftovers before `ready`. */
export type TableRegistration =
  | PgTable
  | { table: PgTable; connection?: string; primaryKey?: string | string[] }

export interface WriteBufferOptions {
  /** Where all pending state lives. The driver decides the scaling model. */
  ipc: Ipc
  /** Named drizzle databases; `default` is used when a table names no connection. */
  databases: { default: AnyPgDatabase } & Record<string, AnyPgDatabase>
  /**
   * How often pending writes are flushed, in ms.
   * @default 5000
   */
  flushInterval?: number
  /**
   * How often pending state is checkpointed to LMDB, in ms (durability 'checkpoint', memory and
   * cluster drivers only; Redis holds the state itself).
   * @default 30000
   */
  checkpointInterval?: number
  /**
   * How many inserts (journal mode: operations of any kind) this process may queue for a table
   * since its last flush of it before a flush starts at once.
   * @default 10000
   */
  maxQueueSize?: number
  /**
   * Primary key column(s) (drizzle property names) for tables that declare none.
   * A table option or the table's declared primary key comes first.
   * @default 'id'
   */
  primaryKey?: string | string[]
  /**
   * 'checkpoint': pending state is snapshotted to LMDB every `checkpointInterval` (a crash loses
   * at most what came after the last checkpoint). 'journal': every operation is written to an
   * LMDB journal (group commit) before its call resolves (a crash loses no acknowledged write).
   * Ignored on the Redis driver.
   * @default 'checkpoint'
   */
  durability?: Durability
  /**
   * When journaled operations reach the disk (durability 'journal'). A number: each operation is
   * committed to LMDB (written to the OS) before its call resolves, so killing the process loses
   * no acknowledged write, and the journal is flushed to disk (fsync) every that many ms, so a
   * power loss or OS crash can lose that much. 'always': each group commit is flushed to disk
   * before its calls resolve (survives a power loss; throughput is bounded by the disk's flush
   * latency, typically 5-10x slower). Every process sharing a `checkpointPath` must use the same
   * kind of setting.
   * @default 1000
   */
  journalFsync?: 'always' | number
  /**
   * Directory of the LMDB environment for checkpoints and the journal. `false` disables both
   * (pending state then lives only in the IPC store).
   * @default '.tidesync/write-buffer'
   */
  checkpointPath?: string | false
  /**
   * Flush (and release) on SIGTERM/SIGINT before the process exits. Calls made after the signal
   * wait for that flush (the process then ends; if it does not, they reject with `WB_CLOSED`).
   * @default true
   */
  handleSignals?: boolean
  /**
   * Prefix of every IPC key and lock the buffer uses.
   * @default 'wb:'
   */
  keyPrefix?: string
  /** Tables to recover and flush before `ready` (others are recovered when first used). */
  tables?: TableRegistration[]
  /**
   * How long `flush()` waits for the flush lock held by another process, in ms.
   * @default 60000
   */
  lockWaitMs?: number
  /**
   * TTL of the flush lock, in seconds (renewed while a flush runs; frees a crashed holder).
   * @default 30
   */
  lockTtlSeconds?: number
  /**
   * How long a cached database value of `get()` stays valid, in ms (it is also dropped by
   * every flush). 0 disables the cache.
   * @default 5000
   */
  getCacheTtl?: number
  /**
   * How long `get()` waits for a flush to finish committing before failing with `WB_TIMEOUT`, in ms.
   * @default 30000
   */
  readWaitMs?: number
  /**
   * How many flushes an increment/update that matches no row is kept for before it is
   * dead-lettered.
   * @default 5
   */
  orphanRetries?: number
  /**
   * How long flushed batch ids are kept in the ledger table, in ms. A recovered batch older than
   * this cannot be told apart from an applied one: it is dead-lettered, not applied.
   * @default 604800000 (7 days)
   */
  ledgerRetentionMs?: number
  /**
   * Largest pause between retries of a failing flush, in ms (the pause doubles from `flushInterval`).
   * @default 60000
   */
  maxBackoffMs?: number
  /**
   * How a flush writes queued inserts. 'copy': `COPY ... FROM` (about twice as fast as INSERT on
   * the PostgreSQL server): on node-postgres through `pg-copy-streams` (install it; without it,
   * INSERT is used), on PGlite from a blob; other drivers, array columns and values COPY text
   * cannot carry use INSERT. 'insert': one `INSERT ... SELECT FROM jsonb_to_recordset($1)` per
   * 1,000 rows. Both insert rows in order and isolate rows the database refuses.
   * @default 'copy'
   */
  insertMethod?: 'copy' | 'insert'
  /**
   * Where the buffer says what it has to say (its messages carry no prefix).
   * @default warnings and errors to the console, prefixed `[tidesync/write-buffer]`
   */
  logger?: Logger
  /** Called with every background failure (flush, checkpoint, poison rows, unmatched rows). */
  onError?: (error: WriteBufferError) => void
  /** The clock (ms since epoch), injectable for tests. @default Date.now */
  now?: () => number
}

/** What one flush of one table did. */
export interface FlushReport {
  table: string
  /** Batch ids committed in this flush (one transaction). */
  batches: string[]
  inserted: number
  /** Rows changed by increments/updates. */
  updatedRows: number
  /** SQL statements sent (transaction control excluded). */
  statements: number
  /** Increments/updates that matched no row and were kept for a later flush. */
  orphaned: number
  /** Rows dead-lettered (poison inserts, rows never found). */
  deadLettered: number
}

export interface CheckpointReport {
  generation: number
  entries: number
}

/** Events of a write buffer. */
export interface WriteBufferEvents {
  error: [WriteBufferError]
  flush: [FlushReport]
  /** A checkpoint began (its lock is taken): writes acknowledged before this are in it or in the database. */
  checkpointStart: []
  /** A checkpoint is written to disk. */
  checkpoint: [CheckpointReport]
}
