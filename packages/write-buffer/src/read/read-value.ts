import type { EncodedKey, TableMeta } from '../store/table-meta.js'
import type { AnyPgDatabase } from '../types.js'
import { type ReadContext, readMany } from './read-many.js'

export type { ReadContext } from './read-many.js'

/**
 * `get(column)` of one row: what the flushes of everything pending will leave in the column
 * (see `readMany`, which reads many rows and columns in one window the same way). The
 * database is not read when a pending update gives the value, or when the cache holds it for
 * the current seqlock version. A failed database read rejects with `WB_READ_FAILED`.
 */
export async function readValue(
  ctx: ReadContext,
  meta: TableMeta,
  db: AnyPgDatabase,
  key: EncodedKey,
  column: string,
): Promise<unknown> {
  const [cells] = await readMany(ctx, meta, db, [key], [column])
  return cells!.get(column)!.value
}
