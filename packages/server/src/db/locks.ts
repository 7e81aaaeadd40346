import { sql } from 'drizzle-orm'
import type { TidesyncTx } from './types.js'

/** Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`). */
export const RECORD_LOCK_CLASS = 0x7473_0001
export const REVISION_LOCK_CLASS = 0x7473_0002

/** The key of a record's advisory lock (hashed with `hashtext`). @internal */
export function recordKey(model: string, uid: string): string {
  return `${model}:${uid}`
}

/** Takes one record's lock until the transaction ends. */
export async function lockRecord(tx: TidesyncTx, model: string, uid: string): Promise<void> {
  await tx.execute(
    sql`SELECT pg_advisory_xact_lock(${RECORD_LOCK_CLASS}::int, hashtext(${recordKey(model, uid)}))`,
  )
}

/**
 * Takes the locks of many records in one statement, in the order given. Callers pass the keys
 * sorted, the order in which a full reconcile takes its records one by one (uid order within a
 * model), so that two writers of overlapping records never wait for each other in a circle.
 */
export async function lockRecords(tx: TidesyncTx, keys: string[]): Promise<void> {
  if (keys.length === 0) return
  await tx.execute(sql`
    SELECT pg_advisory_xact_lock(${RECORD_LOCK_CLASS}::int, hashtext(k)) FROM (
      SELECT k, n FROM jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb) WITH ORDINALITY AS t(k, n)
      ORDER BY n
    ) AS ordered`)
}

/** Takes a model's revision lock until the transaction ends (why: see write/revisions.ts). */
export async function lockRevisions(tx: TidesyncTx, model: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(${REVISION_LOCK_CLASS}::int, hashtext(${model}))`)
}
