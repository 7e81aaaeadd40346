import { type SQL, sql } from 'drizzle-orm'
import { CAPTURE_OFF_CALL } from './capture/capture-sql.js'
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
 * With `captureOff`, the same statement turns change capture off for the transaction (what
 * `CAPTURE_OFF_STATEMENT` does), saving its round trip: run it before any write to a synced
 * table.
 */
export async function lockRecords(
  tx: TidesyncTx,
  keys: string[],
  options: { captureOff?: boolean } = {},
): Promise<void> {
  if (keys.length === 0 && !options.captureOff) return
  await tx.execute(sql`SELECT ${recordLocksSql(keys, options)}`)
}

/**
 * The expression that takes the records' locks (in the order given) and, with `captureOff`,
 * turns capture off; never null, so a statement can wait for it in a one-time filter
 * (`WHERE (SELECT ...) IS NOT NULL`) before doing anything else.
 */
export function recordLocksSql(keys: string[], options: { captureOff?: boolean } = {}): SQL {
  const locks =
    keys.length === 0
      ? sql`0`
      : sql`(SELECT count(pg_advisory_xact_lock(${RECORD_LOCK_CLASS}::int, hashtext(k))) FROM (
      SELECT k, n FROM jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb) WITH ORDINALITY AS t(k, n)
      ORDER BY n
    ) AS ordered)`
  return options.captureOff ? sql`(${sql.raw(CAPTURE_OFF_CALL)} IS NOT NULL AND ${locks} >= 0)` : locks
}

/** Takes a model's revision lock until the transaction ends (why: see write/revisions.ts). */
export async function lockRevisions(tx: TidesyncTx, model: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(${REVISION_LOCK_CLASS}::int, hashtext(${model}))`)
}
