import { type SQL, sql } from 'drizzle-orm'
import { columnType, tableSql } from '../db/raw-rows.js'
import { isTrue } from '../db/sql.js'
import { rowsOf, type Store, type TidesyncTx } from '../db/types.js'
import type { MetaRow } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'
import type { CurrentState, StagedChange } from './staged-change.js'

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
  const { row, meta } = change.after
  return {
    row,
    // A row the change left as it was (a metadata repair) keeps its `to_jsonb` form as read.
    json: row === null ? null : row === change.before.row ? change.before.json : rowToJson(change.model, row),
    inScope: row !== null,
    meta,
  }
}

/** The state of a record that has neither a row nor metadata. */
export function emptyState(): CurrentState {
  return { row: null, json: null, inScope: false, meta: null }
}

/** One record's row (with `to_jsonb` and whether it is in scope) and metadata. */
export async function readCurrent(
  tx: TidesyncTx,
  store: Store,
  model: ResolvedModel<unknown>,
  uid: string,
  scopeSql: SQL | undefined,
  options: { meta?: boolean } = {},
): Promise<CurrentState> {
  return (
    (await readCurrentMany(tx, store, model, [{ uids: [uid], scopeSql }], options)).get(uid) ?? emptyState()
  )
}

/**
 * The rows and metadata of many records of one model, in two queries (a batch of a push reads
 * its records at once), the rows locked until the transaction ends. Every uid gets an entry (an
 * empty state when neither exists). `meta: false` skips the metadata (the caller has it).
 * Both statements are hand-written (`tableSql`): their cost does not grow with the batch.
 */
export async function readCurrentMany(
  tx: TidesyncTx,
  store: Store,
  model: ResolvedModel<unknown>,
  groups: Array<{ uids: string[]; scopeSql: SQL | undefined }>,
  options: { meta?: boolean } = {},
): Promise<Map<string, CurrentState>> {
  const t = tableSql(model.table)
  const uid = t.column('uid')
  const uidType = columnType(model.uid)
  const uids = groups.flatMap((g) => g.uids)
  const among = (list: string[]) =>
    sql`${uid} IN (SELECT jsonb_array_elements_text(${JSON.stringify(list)}::jsonb)::${uidType})`
  const inScope = (scopeSql: SQL | undefined) => (scopeSql ? sql`coalesce((${scopeSql}), false)` : sql`true`)
  // Each group's records are judged by its own scope (a batch of many callers, group commit).
  const scoped =
    groups.length === 1
      ? inScope(groups[0]!.scopeSql)
      : sql`CASE ${sql.join(
          groups.map((g) => sql`WHEN ${among(g.uids)} THEN ${inScope(g.scopeSql)}`),
          sql` `,
        )} ELSE false END`
  // Row locks: a writer outside tidesync (SQL, captured) holds them, not tidesync's advisory
  // record locks. Waiting for it here, and reading the metadata in the next statement (a
  // new snapshot), reads the record as that writer committed it, never a state it replaced.
  // Taken in uid order, as the write buffer's flush takes them (no deadlock with it).
  const rows = rowsOf<Record<string, unknown>>(
    await tx.execute(
      sql`SELECT ${t.columns}, to_jsonb(${t.ref}) AS "__ts_json", ${scoped} AS "__ts_in_scope" FROM ${t.from} WHERE ${among(uids)} ORDER BY ${uid} FOR UPDATE OF ${t.ref}`,
    ),
  )
  const metas =
    options.meta === false
      ? []
      : rowsOf<Record<string, unknown>>(
          await tx.execute(
            sql`SELECT ${metaSql(store).columns} FROM ${metaSql(store).from} WHERE ${metaSql(store).column('model')} = ${model.name} AND ${metaSql(store).column('uid')} = ANY(ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(uids)}::jsonb)))`,
          ),
        )
  const states = new Map<string, CurrentState>()
  for (const id of uids) states.set(id, emptyState())
  for (const raw of rows) {
    const row = t.decode(raw)
    const state = states.get(String(row.uid))
    if (state) Object.assign(state, { row, json: raw.__ts_json, inScope: isTrue(raw.__ts_in_scope) })
  }
  const m = metaSql(store)
  for (const raw of metas) {
    const meta = m.decode(raw) as MetaRow
    const state = states.get(meta.uid)
    if (state) state.meta = meta
  }
  return states
}

function metaSql(store: Store) {
  return tableSql(store.tables.meta)
}
