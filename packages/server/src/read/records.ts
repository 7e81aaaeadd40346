import { and, or, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { tableSql } from '../db/raw-rows.js'
import { isTrue, matchesSql, metaJoin, uidIn } from '../db/sql.js'
import { rowsOf } from '../db/types.js'
import { type MetaRow, rowToWire } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { Filter } from '../model/scope.js'

/** A row with its metadata (null when the row was written outside tidesync). @internal */
export interface RowWithMeta {
  row: Record<string, unknown>
  meta: MetaRow | null
}

/** Where the metadata's columns go in a joined snapshot row (beside the model's own). */
const META = '__ts_meta_'

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
  // Hand-written (see db/raw-rows.ts): drizzle's mapping of a joined select (nested objects,
  // a type check per field) was a third of a snapshot page's server CPU.
  const t = tableSql(model.table)
  const m = tableSql(core.tables.meta)
  const where = and(base, options.extra)
  const limit = options.limit !== undefined ? sql` LIMIT ${options.limit + pending.length}` : sql``
  const raws = rowsOf<Record<string, unknown>>(
    await core.db.execute(
      sql`SELECT ${t.columns}, ${m.columnsAs(META)}, ${matchesSql(filter.sql)} AS "__ts_matched" FROM ${t.from} LEFT JOIN ${m.from} ON ${metaJoin(core.tables, model)}${where ? sql` WHERE ${where}` : sql``} ORDER BY ${model.uid}${limit}`,
    ),
  )
  const rows = raws.map((raw) => ({
    row: t.decode(raw),
    // No metadata row joined (a row written outside tidesync): every metadata column is null.
    meta: raw[`${META}uid`] == null ? null : (m.decode(raw, META) as MetaRow),
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
