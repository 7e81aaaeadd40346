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

/** PGlite and node-postgres both say booleans as `true`; raw queries may say `'t'`. */
export function isTrue(value: unknown): boolean {
  return value === true || value === 't'
}
