import type { Ipc } from '@tidesync/ipc'
import type { WriteBuffer } from '@tidesync/write-buffer'
import type { Limits } from './core.js'
import { TidesyncConfigError } from './errors.js'
import type { TidesyncTables } from './schema/metadata.js'
import type { AuthContext, Handshake, Logger, ModelConfig, TidesyncDb } from './types.js'

/** The options of `createTidesync` (and, with the socket's, of `installTidesync`). */
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
  writeBuffer?: WriteBuffer
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
  /**
   * Group commit: writes (pushes of all clients, service calls) run in at most
   * `maxTransactions` transactions at once; what arrives meanwhile waits and shares the next
   * transaction (up to `maxChangesPerTransaction` changes), each caller still getting its own
   * outcomes. Under load that turns many small commits into few large ones. `false`: every
   * write in a transaction of its own, at once, as many at a time as arrive.
   * @default { maxTransactions: 1 } on PGlite (one connection); on a `pg.Pool`, its `max` minus 1 (at least 1, at most 8)
   */
  groupCommit?: { maxTransactions?: number } | false
}

/** How many group-commit transactions may run at once (see `TidesyncOptions.groupCommit`). @internal */
export function groupCommitTransactions(db: TidesyncDb, option: TidesyncOptions['groupCommit']): number {
  if (option === false) return Number.POSITIVE_INFINITY
  if (option?.maxTransactions !== undefined) {
    if (!Number.isInteger(option.maxTransactions) || option.maxTransactions < 1) {
      throw new TidesyncConfigError('groupCommit.maxTransactions must be an integer >= 1')
    }
    return option.maxTransactions
  }
  const client = (db as unknown as { $client?: { totalCount?: number; options?: { max?: number } } }).$client
  if (client && typeof client.totalCount === 'number') {
    return Math.min(8, Math.max(1, (client.options?.max ?? 10) - 1))
  }
  return 1
}

type LimitOptions = Pick<
  TidesyncOptions,
  | 'maxMetadataEntries'
  | 'maxChangesPerPush'
  | 'maxChangesPerTransaction'
  | 'maxMessageBytes'
  | 'pageSize'
  | 'maxPageSize'
  | 'maxFindManyRows'
  | 'maxSubscriptionsPerSocket'
  | 'syncLockTtlSeconds'
  | 'syncLockWaitMs'
>

/** Every limit with its default applied. @internal */
export function resolveLimits(options: LimitOptions, socketLimit?: number): Limits {
  return {
    maxMetadataEntries: options.maxMetadataEntries ?? 100_000,
    maxChangesPerPush: options.maxChangesPerPush ?? 500,
    maxChangesPerTransaction: Math.max(1, options.maxChangesPerTransaction ?? 250),
    maxMessageBytes: options.maxMessageBytes ?? Math.floor((socketLimit ?? 1e6) / 2),
    pageSize: options.pageSize ?? 1000,
    maxPageSize: options.maxPageSize ?? 5000,
    maxFindManyRows: options.maxFindManyRows ?? 10_000,
    maxSubscriptionsPerSocket: options.maxSubscriptionsPerSocket ?? 100,
    syncLockTtlSeconds: options.syncLockTtlSeconds ?? 30,
    syncLockWaitMs: options.syncLockWaitMs ?? 15_000,
  }
}
