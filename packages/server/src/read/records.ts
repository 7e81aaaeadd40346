import { and, asc, or, type SQL } from 'drizzle-orm'
import type { Core } from '../core.js'
import { isTrue, matchesSql, metaJoin, uidIn } from '../db/sql.js'
import { type MetaRow, rowToWire } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { Filter } from '../model/scope.js'

/** A row with its metadata (null when the row was written outside tidesync). @internal */
export interface RowWithMeta {
  row: Record<string, unknown>
  meta: MetaRow | null
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
  let query = core.db
    .select({ row: model.table, meta: core.tables.meta, matched: matchesSql(filter.sql) })
    .from(model.table)
    .leftJoin(core.tables.meta, metaJoin(core.tables, model))
    .where(and(base, options.extra))
    .orderBy(asc(model.uid))
    .$dynamic()
  if (options.limit !== undefined) query = query.limit(options.limit + pending.length)
  const rows = (await query) as Array<{
    row: Record<string, unknown>
    meta: MetaRow | null
    matched: boolean | string
  }>
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
