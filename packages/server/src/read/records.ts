import type { WireMeta } from '@tidesync/protocol'
import { and, or, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { type TableSql, tableSql } from '../db/raw-rows.js'
import { isoText, isTrue, matchesSql, metaJoin, modelJoin, SERIAL_PLAN, uidIn } from '../db/sql.js'
import { rowsOf } from '../db/types.js'
import { rowToWire } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { Filter } from '../model/scope.js'

/**
 * A row with its metadata in wire form (null when the row was written outside tidesync): every
 * reader of these rows sends them, so the metadata is read as it is sent. @internal
 */
export interface RowWithMeta {
  row: Record<string, unknown>
  meta: WireMeta | null
}

/** Where the metadata's columns go in a joined snapshot row (beside the model's own). */
const META = '__ts_meta_'

/**
 * The metadata's columns in wire form, under `META` names: the timestamps as ISO text made by
 * the database (`isoText`), which spares two `Date`s parsed and formatted back per record, and
 * the clocks as JSON text (records written together share it: parsed once per query).
 */
function wireMetaColumns(m: TableSql): SQL {
  return sql.join(
    [
      sql`${m.column('uid')} AS ${sql.identifier(`${META}uid`)}`,
      sql`${isoText(m.column('createdAt'))} AS ${sql.identifier(`${META}created_at`)}`,
      sql`${isoText(m.column('updatedAt'))} AS ${sql.identifier(`${META}updated_at`)}`,
      sql`${isoText(m.column('deletedAt'))} AS ${sql.identifier(`${META}deleted_at`)}`,
      sql`${m.column('rev')} AS ${sql.identifier(`${META}rev`)}`,
      sql`${m.column('clocks')}::text AS ${sql.identifier(`${META}clocks`)}`,
    ],
    sql`, `,
  )
}

/**
 * The wire metadata of a row `wireMetaColumns` selected (null: no metadata row joined). `clocks`
 * holds the clock maps parsed so far by their text: equal texts give one shared object, frozen
 * so that a reader cannot change another record's clocks through it.
 */
function wireMetaOf(
  m: TableSql,
  raw: Record<string, unknown>,
  clocks: Map<string, WireMeta['clocks']>,
): WireMeta | null {
  if (raw[`${META}uid`] == null) return null
  const text = raw[`${META}clocks`] as string
  let parsed = clocks.get(text)
  if (!parsed) {
    parsed = Object.freeze(JSON.parse(text)) as WireMeta['clocks']
    clocks.set(text, parsed)
  }
  return {
    created_at: raw[`${META}created_at`] as string,
    updated_at: raw[`${META}updated_at`] as string,
    deleted_at: (raw[`${META}deleted_at`] as string | null) ?? null,
    rev: m.value('rev', raw[`${META}rev`]) as number,
    clocks: parsed,
  }
}

/**
 * The statement `readRecords` runs: the model's columns, the wire metadata and whether each row
 * matches `filter`, joined, in uid order. Hand-written (see db/raw-rows.ts): drizzle's mapping
 * of a joined select (nested objects, a type check per field) was a third of a snapshot page's
 * server CPU. Never planned in parallel (`SERIAL_PLAN`): a page is a short index range, and a
 * server reads many of them at once. @internal
 */
export function recordsStatement(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Pick<Filter, 'sql'>,
  options: { where?: SQL; limit?: number } = {},
): SQL {
  const t = tableSql(model.table)
  const m = tableSql(core.tables.meta)
  const { where, limit } = options
  return sql`SELECT ${t.columns}, ${wireMetaColumns(m)}, ${matchesSql(filter.sql)} AS "__ts_matched", ${SERIAL_PLAN} FROM ${t.from} LEFT JOIN ${m.from} ON ${metaJoin(core.tables, model)}${where ? sql` WHERE ${where}` : sql``} ORDER BY ${model.uid}${limit !== undefined ? sql` LIMIT ${limit}` : sql``}`
}

/**
 * Rows of a model matching `filter` (and `extra`), each with its metadata, in uid order, with
 * pending write-buffer values overlaid: at most `limit` rows.
 *
 * Rows with pending state are fetched whatever the filter and judged on their overlaid values
 * (`filter.matches`), so a pending change moves a record into or out of a where or a scope at
 * once. At most that many rows can drop out, so the query asks for `limit` plus that many.
 */
export async function readRecords(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Pick<Filter, 'sql' | 'matches'>,
  options: { extra?: SQL; limit?: number } = {},
): Promise<RowWithMeta[]> {
  const pending = filter.sql ? await core.pending.pendingUids(model) : []
  const base = pending.length > 0 ? or(filter.sql, uidIn(model, pending)) : filter.sql
  const t = tableSql(model.table)
  const m = tableSql(core.tables.meta)
  const statement = recordsStatement(core, model, filter, {
    where: and(base, options.extra),
    limit: options.limit !== undefined ? options.limit + pending.length : undefined,
  })
  const raws = rowsOf<Record<string, unknown>>(await core.db.execute(statement))
  const clocks = new Map<string, WireMeta['clocks']>()
  const rows = raws.map((raw) => ({
    row: t.decode(raw),
    meta: wireMetaOf(m, raw, clocks),
    matched: raw.__ts_matched,
  }))
  const changed = await core.pending.overlay(
    model,
    rows.map((r) => r.row),
  )
  const kept: RowWithMeta[] = []
  for (const { row, meta, matched } of rows) {
    const keep = changed.has(row) ? filter.matches(rowToWire(model, row)) : isTrue(matched)
    if (keep) kept.push({ row, meta })
    if (options.limit !== undefined && kept.length >= options.limit) break
  }
  return kept
}

/** A record named by the change log, as it is now: its metadata, its row (null: deleted). @internal */
export interface LoggedRecord {
  uid: string
  row: Record<string, unknown> | null
  meta: WireMeta
  /** Whether the row matches the filter now (false without a row). */
  matched: boolean
}

/**
 * The records `uids` of a model as they are now, driven from their metadata (deleted records
 * keep theirs): one statement, the uids as one parameter, the metadata in wire form, never
 * planned in parallel; the same decoding as `readRecords`. No write-buffer overlay: the caller
 * overlays the rows it keeps. @internal
 */
export async function readLoggedRecords(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Pick<Filter, 'sql'>,
  uids: readonly string[],
): Promise<LoggedRecord[]> {
  const t = tableSql(model.table)
  const m = tableSql(core.tables.meta)
  const matched = filter.sql ? matchesSql(filter.sql) : sql`${model.uid} IS NOT NULL`
  const raws = rowsOf<Record<string, unknown>>(
    await core.db.execute(
      sql`SELECT ${t.columns}, ${wireMetaColumns(m)}, ${matched} AS "__ts_matched", ${SERIAL_PLAN} FROM ${m.from} LEFT JOIN ${t.from} ON ${modelJoin(core.tables, model)} WHERE ${m.column('model')} = ${model.name} AND ${m.column('uid')} IN (SELECT jsonb_array_elements_text(${JSON.stringify(uids)}::jsonb))`,
    ),
  )
  const clocks = new Map<string, WireMeta['clocks']>()
  return raws.map((raw) => ({
    uid: raw[`${META}uid`] as string,
    row: raw[model.uid.name] == null ? null : t.decode(raw),
    meta: wireMetaOf(m, raw, clocks)!,
    matched: isTrue(raw.__ts_matched),
  }))
}
