import type { Table } from 'drizzle-orm'

/**
 * Where the client logs. Messages carry no prefix; the default logger (`defaultLogger`) writes
 * warnings and errors to the console, prefixed `[tidesync/client]`.
 */
export type { Logger } from '@tidesync/protocol'

/** The wall clock, injectable so tests are deterministic. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

/** Timer functions, injectable so tests can run backoff and timeouts on their own schedule. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** A schema: drizzle tables keyed by model name (e.g. `import * as schema from './schema'`). */
export type Schema = Record<string, unknown>

/** The keys of a schema that hold drizzle tables. */
export type ModelName<S extends Schema> = {
  [K in keyof S]: S[K] extends Table ? K : never
}[keyof S] &
  string

/** A stored record of a table, as drizzle types its select results (`InferSelectModel`). */
export type RecordOf<T extends Table> = T['$inferSelect']

/** The data `create` takes: the insert model; `uid` is optional (a UUIDv7 is made). */
export type CreateInput<T extends Table> = Omit<T['$inferInsert'], 'uid'> & { uid?: string }

/** The patch `update` takes: any changed fields except `uid`. */
export type UpdatePatch<T extends Table> = Partial<Omit<T['$inferSelect'], 'uid'>>

/** The keys of a record whose values are numbers (candidates for counters). */
export type NumericKeys<R> = { [K in keyof R]-?: NonNullable<R[K]> extends number ? K : never }[keyof R] &
  string

/** A range or membership condition on one column. */
export type WhereCondition<V> =
  | V
  | { in: V[] }
  | { gte?: NonNullable<V>; gt?: NonNullable<V>; lte?: NonNullable<V>; lt?: NonNullable<V> }

/**
 * A filter on a model's columns, ANDed together, the same on the client (local queries) and the
 * server (the synced subset). A value means equality (`null`: IS NULL), `{ in: [...] }`
 * membership, `{ gte, gt, lte, lt }` a range. Dates may be given as `Date`.
 */
export type WhereOf<R> = { [K in keyof R]?: WhereCondition<R[K]> }

/** Per-model options. */
export interface ModelOptions {
  /**
   * The model's name on the wire (what the server's `models` config calls it).
   * @default the schema key
   */
  name?: string
  /**
   * Columns that are counters: changed only through `increment`, merged by adding deltas.
   * Must match the server's counter config for the model.
   * @default []
   */
  counters?: string[]
  /**
   * Columns to index in IndexedDB, so local queries with an equality or range on them read
   * through the index instead of scanning the table, and queries with `orderBy` one of them and
   * a `limit` walk it and stop at the limit. A list of columns is a compound index:
   * `['projectId', 'title']` serves `find$({ projectId }, { orderBy: 'title', limit })` without
   * visiting other projects' records. The database is upgraded when this changes.
   * @default []
   */
  indexes?: Array<string | string[]>
}

/** Progress of a long sync (initial full reconcile or a delta pull of many pages). */
export interface SyncProgress {
  /** The model being synced. */
  model: string
  /** Records applied so far in this sync. */
  loaded: number
  /** Records expected in total (may be approximate while pages arrive). */
  total: number
  /** `loaded / total`, between 0 and 1. */
  ratio: number
}

/** The client's connection and sync state, as `client.status$` emits it. */
export interface SyncStatus {
  /** Connected to the server, and not switched off with `goOffline()`. */
  online: boolean
  /** A push or pull is running. */
  syncing: boolean
  /** Local changes not yet confirmed by the server (shared by every tab on the database). */
  pending: number
  /** Progress of the running sync, or null. */
  progress: SyncProgress | null
  /** When the last complete sync (push + every active subset) finished. */
  lastSyncedAt: Date | null
  /** The last error (a server error answer, a rejected change, a timeout); cleared by the next successful sync. */
  error: import('./errors.js').TidesyncClientError | null
}
