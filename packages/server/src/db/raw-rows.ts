import { getTableColumns, getTableName, type SQL, sql } from 'drizzle-orm'
import { getTableConfig, type PgColumn, type PgTable } from 'drizzle-orm/pg-core'

/**
 * Hand-written statements of the write path, and the decoding of the rows they return.
 *
 * Why not drizzle's query builders there: building a statement costs per column reference and
 * per parameter (a ten-row insert of two columns, or a select of ten records with their
 * scopes, takes about a millisecond to build), and a push batch builds several of them per
 * transaction. These statements take their lists as one JSON parameter and name their table
 * and columns with identifiers quoted once per table, so they cost the same whatever the batch.
 * Rows come back as `execute` gives them (driver values under column names, with the same type
 * parsers drizzle's own queries use) and are decoded here as drizzle decodes a selected row
 * (`mapFromDriverValue`), so callers get exactly what a drizzle select would have given them.
 * @internal
 */
export interface TableSql {
  /** `"schema"."table"` (or `"table"`), for FROM / INSERT INTO / UPDATE. */
  from: SQL
  /** `"table"`: how drizzle's SQL (and `to_jsonb`) refers to the table's rows. */
  ref: SQL
  /** Every column as `"table"."column"`, comma-separated (a SELECT or RETURNING list). */
  columns: SQL
  /** Each column by property name: `"table"."column"`. */
  column: (key: string) => SQL
  /** Each column by property name: its quoted name alone (`"column"`). */
  name: (key: string) => SQL
  /** Columns by property name: their quoted names, comma-separated (an INSERT's column list). */
  names: (keys: string[]) => SQL
  /** A row as `execute` returns it, decoded to property names and drizzle values. */
  decode: (raw: Record<string, unknown>) => Record<string, unknown>
  /** One column's driver value (by property name) decoded as `decode` decodes it. */
  value: (key: string, raw: unknown) => unknown
}

const cache = new WeakMap<PgTable, TableSql>()

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** The statements' view of a drizzle table (made once per table). @internal */
export function tableSql(table: PgTable): TableSql {
  let known = cache.get(table)
  if (known) return known
  const { schema } = getTableConfig(table)
  const name = quote(getTableName(table))
  const columns = Object.entries(getTableColumns(table)) as Array<[string, PgColumn]>
  const qualified = new Map(columns.map(([key, column]) => [key, sql.raw(`${name}.${quote(column.name)}`)]))
  const bare = new Map(columns.map(([key, column]) => [key, sql.raw(quote(column.name))]))
  const byKey = new Map(columns)
  const value = (column: PgColumn, raw: unknown) =>
    raw === null || raw === undefined ? null : column.mapFromDriverValue(raw)
  known = {
    from: sql.raw(schema ? `${quote(schema)}.${name}` : name),
    ref: sql.raw(name),
    columns: sql.raw(columns.map(([, column]) => `${name}.${quote(column.name)}`).join(', ')),
    column: (key) => qualified.get(key)!,
    name: (key) => bare.get(key)!,
    names: (keys) => sql.raw(keys.map((key) => quote(getTableColumns(table)[key]!.name)).join(', ')),
    decode: (raw) => {
      const row: Record<string, unknown> = {}
      for (const [key, column] of columns) row[key] = value(column, raw[column.name])
      return row
    },
    value: (key, raw) => value(byKey.get(key)!, raw),
  }
  cache.set(table, known)
  return known
}

/** The SQL type a column is cast to (its DDL type; serials read as their integer type). @internal */
export function columnType(column: PgColumn): SQL {
  const type = column.getSQLType()
  const serial: Record<string, string> = { serial: 'integer', bigserial: 'bigint', smallserial: 'smallint' }
  return sql.raw(serial[type] ?? type)
}
