import type { Ipc } from '@tidesync/ipc'
import type { Logger, Where, WireRecord } from '@tidesync/protocol'
import type { PgDatabase, PgTable } from 'drizzle-orm/pg-core'
import type { Socket } from 'socket.io'
import type { TidesyncTables } from './schema/metadata.js'
import type { WriteBufferLike } from './write/write-buffer-like.js'

/**
 * A drizzle PostgreSQL database: `drizzle-orm/pglite` or `drizzle-orm/node-postgres` (built on a
 * `pg.Pool`, so that transactions get their own connection).
 */
// biome-ignore lint/suspicious/noExplicitAny: drizzle's database generics differ per driver and schema
export type TidesyncDb = PgDatabase<any, any, any>

/** Where the server logs (the protocol's `Logger`). Default: warnings and errors to the console. */
export type { Logger } from '@tidesync/protocol'

/** The socket.io handshake `authenticate` receives (`auth`, `headers`, `query`, `address`...). */
export type Handshake = Socket['handshake']

/** What `authenticate` returned for a socket (or what an HTTP caller passes): the user. */
export type AuthContext = Record<string, unknown>

export type WriteOp = 'create' | 'update' | 'delete' | 'increment'

export interface WriteCheck {
  op: WriteOp
  /** The record before the write (null for a create of a new uid). */
  previous: WireRecord | null
}

/**
 * One synced model.
 *
 * @example
 * models: {
 *   todos: {
 *     table: todos,
 *     scope: (ctx) => ({ ownerId: ctx.userId }),
 *     canWrite: (ctx, record) => record.ownerId === ctx.userId,
 *     counters: ['likes'],
 *   },
 * }
 */
export interface ModelConfig<TCtx = AuthContext> {
  /** A drizzle pg table with a `uid` primary key (uuid or text). */
  table: PgTable
  /**
   * The rows this user may see and write, as a `where` the server ANDs into every read, sync,
   * write and live push. Return `undefined` for no restriction.
   * @default no restriction
   */
  scope?: (ctx: TCtx) => Where | undefined | null
  /**
   * Decides a write after the merge: `record` is the record as it will be stored (for a
   * delete: as it was). Return false to refuse with `FORBIDDEN`; nothing is written.
   * @default every write in scope is allowed
   */
  canWrite?: (ctx: TCtx, record: WireRecord, check: WriteCheck) => boolean | Promise<boolean>
  /**
   * Integer columns merged by adding deltas (the `increment` change), never last-write-wins.
   * They go through the write buffer when one is configured.
   * @default []
   */
  counters?: string[]
  /**
   * Write the rows of this model through the write buffer (reads overlay the pending state).
   * Needs `writeBuffer`.
   * @default false
   */
  buffered?: boolean
}

export interface TidesyncOptions<TCtx = AuthContext> {
  /** The drizzle database that owns the truth. */
  db: TidesyncDb
  /** Locks (one sync of a model+where at a time, across servers) and pub/sub (live pushes). */
  ipc: Ipc
  /**
   * The write buffer for counters and `buffered` models. Without it, counter increments are one
   * atomic `col = col + delta` inside the change's transaction.
   * @default undefined
   */
  writeBuffer?: WriteBufferLike
  /** The synced models, by the name clients use. */
  models: Record<string, ModelConfig<TCtx>>
  /**
   * Turns a socket handshake (or an HTTP request's credentials) into the user's context. A
   * falsy return or a throw refuses the socket with `UNAUTHORIZED`.
   * @default every socket is accepted with the context `{}`
   */
  authenticate?: (
    handshake: Handshake,
  ) => TCtx | null | undefined | false | Promise<TCtx | null | undefined | false>
  /** The metadata tables. @default tidesyncTables (from `defineTidesyncTables()`) */
  tables?: TidesyncTables
  /** Most entries a full reconcile's metadata dictionary may have. @default 100000 */
  maxMetadataEntries?: number
  /** Most changes one `sync:push` may carry. @default 500 */
  maxChangesPerPush?: number
  /**
   * Most changes of a push applied in one transaction. A push is applied in batches of this
   * size (one transaction each, one savepoint per change), which is much faster than one
   * transaction per change; the records of a batch stay locked until it commits, so a smaller
   * batch lets concurrent writers of the same records in sooner. `1` is a transaction per change.
   * @default 250
   */
  maxChangesPerTransaction?: number
  /** A client clock further ahead of the server's than this is clamped to the server's. @default 60000 */
  maxClockSkewMs?: number
  /**
   * Largest request, as JSON bytes, answered normally; a bigger one gets `PAYLOAD_TOO_LARGE`.
   * Keep it below socket.io's `maxHttpBufferSize`: a message over that is dropped by socket.io
   * with the connection, before any handler sees it.
   * @default half of the socket.io server's maxHttpBufferSize (1e6 / 2 when not socket.io)
   */
  maxMessageBytes?: number
  /** Page size of `sync:pull` when the client gives none. @default 1000 */
  pageSize?: number
  /** Largest `limit` a client may ask of `sync:pull`. @default 5000 */
  maxPageSize?: number
  /** Largest (and default) `limit` of `findMany`. @default 10000 */
  maxFindManyRows?: number
  /** Most live subscriptions per socket. @default 100 */
  maxSubscriptionsPerSocket?: number
  /** TTL of the IPC lock around one sync (renewed while it runs). @default 30 */
  syncLockTtlSeconds?: number
  /** How long a sync waits for the lock before failing with `UNAVAILABLE`. @default 15000 */
  syncLockWaitMs?: number
  /** Prefix of IPC lock keys and pub/sub channels. @default 'tidesync:' */
  keyPrefix?: string
  /**
   * This server's id in HLC clocks: 1 to 32 characters of `[A-Za-z0-9_]` (`isNodeId` of
   * @tidesync/protocol); clients ignore a `serverClock` with any other node id.
   * @default random 8 hex chars
   */
  nodeId?: string
  /** The wall clock, in ms since the epoch (tests inject one). @default Date.now */
  now?: () => number
  /** @default warnings and errors to the console */
  logger?: Logger
}
