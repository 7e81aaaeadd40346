import { and, eq, inArray, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { isTrue, uidIn } from '../services/read-records.js'
import { toWireValue } from '../validation/values.js'
import type { MetaRow } from '../wire/serialize.js'
import type { StagedChange } from './staged-change.js'

/** Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`). */
export const RECORD_LOCK_CLASS = 0x7473_0001
export const REVISION_LOCK_CLASS = 0x7473_0002

/** A record as a write finds it, under its lock. @internal */
export interface CurrentState {
  row: Record<string, unknown> | null
  /** The row as `to_jsonb` gives it (database column names), for the change log. */
  beforeJson: unknown
  inScope: boolean
  meta: MetaRow | null
}

/**
 * A row (drizzle property names) in the shape `to_jsonb` gives it (database column names, JSON
 * values), as the change log keeps rows. The write buffer's overlay builds it the same way.
 */
export function rowToJson(
  model: ResolvedModel<unknown>,
  row: Record<string, unknown>,
): Record<string, unknown> {
  const json: Record<string, unknown> = {}
  for (const [key, column] of model.columns) json[column.name] = toWireValue(row[key])
  return json
}

/**
 * The record's state after a change written in this transaction, for the next change of the
 * same record in the transaction: it is what reading the record again would give (the write
 * was in scope: that was checked), with the metadata the change staged.
 */
export function stateAfter(change: StagedChange): CurrentState {
  const row = change.afterRow ?? null
  return {
    row,
    // A row the change left as it was (a metadata repair) keeps its `to_jsonb` form as read.
    beforeJson:
      row === null ? null : change.after === change.before ? change.beforeJson : rowToJson(change.model, row),
    inScope: row !== null,
    meta: change.meta,
  }
}

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

/** One record's row (with `to_jsonb` and whether it is in scope) and metadata. */
export async function readCurrent(
  tx: TidesyncTx,
  core: Core,
  model: ResolvedModel<unknown>,
  uid: string,
  scopeSql: SQL | undefined,
  options: { meta?: boolean } = {},
): Promise<CurrentState> {
  return (await readCurrentMany(tx, core, model, [uid], scopeSql, options)).get(uid) ?? emptyState()
}

function emptyState(): CurrentState {
  return { row: null, beforeJson: null, inScope: false, meta: null }
}

/**
 * The rows and metadata of many records of one model, in two queries (a batch of a push reads
 * its records at once). Every uid gets an entry (an empty state when neither exists).
 * `meta: false` skips the metadata (the caller has it).
 */
export async function readCurrentMany(
  tx: TidesyncTx,
  core: Core,
  model: ResolvedModel<unknown>,
  uids: string[],
  scopeSql: SQL | undefined,
  options: { meta?: boolean } = {},
): Promise<Map<string, CurrentState>> {
  const { meta } = core.tables
  const rows = (await tx
    .select({
      row: model.table,
      beforeJson: sql`to_jsonb(${sql.identifier(model.tableName)})`,
      inScope: scopeSql ? sql<boolean>`coalesce((${scopeSql}), false)` : sql<boolean>`true`,
    })
    .from(model.table)
    .where(uids.length === 1 ? eq(model.uid, uids[0]) : uidIn(model, uids))) as Array<{
    row: Record<string, unknown>
    beforeJson: unknown
    inScope: unknown
  }>
  const metas =
    options.meta === false
      ? []
      : await tx
          .select()
          .from(meta)
          .where(
            and(
              eq(meta.model, model.name),
              uids.length === 1 ? eq(meta.uid, uids[0]!) : inArray(meta.uid, uids),
            ),
          )
  const states = new Map<string, CurrentState>()
  for (const uid of uids) states.set(uid, emptyState())
  for (const { row, beforeJson, inScope } of rows) {
    const state = states.get(String(row.uid))
    if (state) Object.assign(state, { row, beforeJson, inScope: isTrue(inScope) })
  }
  for (const row of metas) {
    const state = states.get(row.uid)
    if (state) state.meta = row
  }
  return states
}
