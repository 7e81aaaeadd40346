import { and, eq, type SQL, sql } from 'drizzle-orm'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { TidesyncTables } from '../schema/metadata.js'

/** SQL pieces that reads and writes share: joins with the metadata, uid lists, booleans. */

/** `meta.uid = <model>.uid::text`: the join between a model and its metadata. @internal */
export function metaJoin(tables: TidesyncTables, model: ResolvedModel<unknown>): SQL {
  const { meta } = tables
  return and(eq(meta.model, model.name), eq(meta.uid, sql`${model.uid}::text`))!
}

/**
 * The same join driven from the metadata: the cast is on the metadata side, so that the
 * model's primary key index is used. @internal
 */
export function modelJoin(tables: TidesyncTables, model: ResolvedModel<unknown>): SQL {
  const { meta } = tables
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

/**
 * A timestamp as the text `Date.prototype.toISOString` gives for it (UTC, three digits of
 * milliseconds, `Z`), made by the database: a read that only passes timestamps on to the wire
 * then parses no `Date` and formats none. Exact for millisecond columns (the metadata's) in
 * years 0-9999; finer columns lose their microseconds here as a `Date` would. @internal
 */
export function isoText(column: SQL): SQL<string> {
  return sql<string>`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
}

/**
 * A select-list column that keeps PostgreSQL from planning its statement in parallel:
 * `current_schema()` is marked PARALLEL UNSAFE, and one such call rules out parallel plans for
 * the whole statement. For keyset pages: on a table of about 100,000 rows the planner chose a
 * parallel worker for a page of 1,000 rows, and each page took 40-60 ms, most of it starting the
 * worker, against 10 ms serial. A `SET LOCAL` would need a transaction around every page read,
 * and those extra round trips cost more than they saved on small tables. @internal
 */
export const SERIAL_PLAN: SQL = sql.raw('current_schema() AS "__ts_serial_plan"')

/** PGlite and node-postgres both say booleans as `true`; raw queries may say `'t'`. */
export function isTrue(value: unknown): boolean {
  return value === true || value === 't'
}
