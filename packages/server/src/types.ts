import type { Where, WireRecord } from '@tidesync/protocol'
import type { PgDatabase, PgTable } from 'drizzle-orm/pg-core'
import type { Socket } from 'socket.io'

/**
 * The words every part of the server uses: the database, the logger, the user's context and
 * the model configuration. `createTidesync`'s options are in options.ts.
 */

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
