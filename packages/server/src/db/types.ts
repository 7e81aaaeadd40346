import type { TidesyncDb } from '../types.js'

/** A transaction of a `TidesyncDb`. @internal */
export type TidesyncTx = Parameters<Parameters<TidesyncDb['transaction']>[0]>[0]

/** Both drivers (PGlite, node-postgres) answer `execute` with `{ rows }`. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[]
}
