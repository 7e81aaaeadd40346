import type { TidesyncTables } from '../schema/metadata.js'
import type { TidesyncDb } from '../types.js'

/** A transaction of a `TidesyncDb`. @internal */
export type TidesyncTx = Parameters<Parameters<TidesyncDb['transaction']>[0]>[0]

/**
 * The database and its metadata tables: what the db floor's helpers need of the server's
 * context (they take this, not the whole `Core`, which stands above them). @internal
 */
export interface Store {
  db: TidesyncDb
  tables: TidesyncTables
}

/** Both drivers (PGlite, node-postgres) answer `execute` with `{ rows }`. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[]
}
