import type { Logger } from '../types.js'

/** The parts of a node-postgres `Pool` (and its clients) used here; duck-typed, no `pg` import. */
interface PgPoolLike {
  on(event: string, listener: (...args: never[]) => void): unknown
  connect: unknown
  totalCount: number
  /** node-postgres' clients of the pool (private; used when present). */
  _clients?: unknown
}

interface PgClientLike {
  on(event: 'error', listener: (error: Error) => void): unknown
}

/**
 * Pools already guarded, shared by every copy of this module and by other tidesync packages
 * (the server calls this same function), so a pool gets the listeners once.
 */
const GUARDED_KEY = Symbol.for('tidesync.guardedPgPools')
const globals = globalThis as { [GUARDED_KEY]?: WeakSet<object> }
const guarded: WeakSet<object> = globals[GUARDED_KEY] ?? new WeakSet()
globals[GUARDED_KEY] = guarded

function isPgPool(value: unknown): value is PgPoolLike {
  if (!value || typeof value !== 'object') return false
  const pool = value as Partial<PgPoolLike>
  return (
    typeof pool.on === 'function' && typeof pool.connect === 'function' && typeof pool.totalCount === 'number'
  )
}

function hasOn(value: unknown): value is PgClientLike {
  return !!value && typeof value === 'object' && typeof (value as { on?: unknown }).on === 'function'
}

/**
 * When the drizzle database runs on a node-postgres `Pool` (`db.$client`), gives the pool and
 * every one of its clients an 'error' listener that logs, once per pool. Used by the write
 * buffer and by @tidesync/server.
 *
 * Why here: the write buffer is the lowest package that talks to PostgreSQL (ipc and protocol
 * never do), it runs on its own (without the server) and must guard the pools it flushes on,
 * and the server depends on it already; the server guards its own `db` with this same function.
 *
 * Why: node-postgres re-emits the errors of idle clients on the pool, but a client checked out
 * by a transaction that awaits something else between two queries (a flush, or a sync
 * transaction, awaits the IPC store mid-transaction) emits 'error' on itself, and an 'error'
 * event without a listener ends the process: a PostgreSQL restart would kill every server. The query that uses the dead
 * connection still fails: the flush retries later, a sync answers UNAVAILABLE.
 */
export function guardPgPool(db: unknown, logger: Logger): void {
  const pool = (db as { $client?: unknown } | null | undefined)?.$client
  if (!isPgPool(pool) || guarded.has(pool)) return
  guarded.add(pool)
  const clients = new WeakSet<object>()
  const listen = (client: unknown) => {
    if (!hasOn(client) || clients.has(client)) return
    clients.add(client)
    client.on('error', (error: Error) => logger.warn(`PostgreSQL connection error: ${error?.message}`, error))
  }
  pool.on('connect', ((client: unknown) => listen(client)) as (...args: never[]) => void)
  // An idle client's error comes twice: on the client (logged above) and on the pool.
  pool.on('error', ((error: Error, client: unknown) => {
    if (!client || typeof client !== 'object' || !clients.has(client)) {
      logger.warn(`PostgreSQL connection error: ${error?.message}`, error)
    }
  }) as (...args: never[]) => void)
  // Clients connected before this call (node-postgres keeps them in `_clients`).
  if (Array.isArray(pool._clients)) for (const client of pool._clients) listen(client)
}
