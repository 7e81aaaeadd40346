import { and, asc, eq, or, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import type { Filter } from '../sync/scope.js'
import { type MetaRow, rowToWire } from '../wire/serialize.js'

/** A row with its metadata (null when the row was written outside tidesync). @internal */
export interface RowWithMeta {
  row: Record<string, unknown>
  meta: MetaRow | null
}

/** `meta.uid = <model>.uid::text`: the join between a model and its metadata. @internal */
export function metaJoin(core: Core, model: ResolvedModel<unknown>): SQL {
  const { meta } = core.tables
  return and(eq(meta.model, model.name), eq(meta.uid, sql`${model.uid}::text`))!
}

/**
 * The same join driven from the metadata: the cast is on the metadata side, so that the
 * model's primary key index is used. @internal
 */
export function modelJoin(core: Core, model: ResolvedModel<unknown>): SQL {
  const { meta } = core.tables
  return and(eq(meta.model, model.name), sql`${model.uid} = ${meta.uid}::${sql.raw(model.uid.getSQLType())}`)!
}

/**
 * `<model>.uid` is one of `uids` (one parameter, however many uids; the uids are cast, not the
 * column, so the primary key index is used). @internal
 */
export function uidIn(model: ResolvedModel<unknown>, uids: string[]): SQL {
  return sql`${model.uid} IN (SELECT jsonb_array_elements_text(${JSON.stringify(uids)}::jsonb)::${sql.raw(model.uid.getSQLType())})`
}

/** A boolean SQL column: does the row match `filter`? @internal */
export function matchesSql(filter: SQL | undefined): SQL<boolean | string> {
  return filter ? sql<boolean>`coalesce((${filter}), false)` : sql<boolean>`true`
}

/** PGlite and node-postgres both say booleans as `true`; raw queries may say `'t'`. */
export function isTrue(value: unknown): boolean {
  return value === true || value === 't'
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
    .leftJoin(core.tables.meta, metaJoin(core, model))
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
