import { getTableColumns, is, Param, SQL, sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { columnType, tableSql } from '../db/raw-rows.js'
import { rowsOf, type TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../model/resolve-models.js'

/** One row's update: its uid and the fields to set (property names, drizzle values). */
export interface RowUpdate {
  uid: string
  fields: Record<string, unknown>
}

/**
 * Writes the rows of a batch of one model, new ones and existing ones, in one statement, and
 * returns each row as written (`RETURNING`, decoded as drizzle decodes a row), by uid. Every
 * uid appears once (inserts and updates are of distinct records).
 *
 * - An inserted row gets what `tx.insert(table).values(rows)` would give it, the same way: a
 *   column the row leaves out takes its `$defaultFn`, else (without a default) its `$onUpdate`,
 *   else the column's DEFAULT; generated columns are left out.
 * - An updated row gets what `tx.update(table).set(fields).where(uid = ...)` would give it:
 *   `UPDATE ... FROM (VALUES ...)`, one per set of columns, each value encoded and cast as its
 *   column's. A row that is not there has no entry. (A model with `$onUpdate` columns is
 *   updated with drizzle's builder, which adds them, in statements of their own.)
 *
 * Why by hand and together: drizzle's builders cost about a millisecond per ten rows to build,
 * and each statement is a round trip of the transaction; the inserts and every update are
 * data-modifying CTEs of one statement (they touch distinct rows), named with identifiers
 * quoted once per table (`tableSql`).
 */
export async function writeRows(
  tx: TidesyncTx,
  model: ResolvedModel<unknown>,
  inserts: Array<Record<string, unknown>>,
  updates: RowUpdate[],
): Promise<Map<string, Record<string, unknown>>> {
  const t = tableSql(model.table)
  const rows = new Map<string, Record<string, unknown>>()
  const parts: SQL[] = []
  if (inserts.length > 0) parts.push(insertSql(model, inserts))
  const groups = byColumns(updates)
  // `$onUpdate` columns: drizzle's builder adds them to every update (not worth doing by hand).
  const builder = [...model.columns.values()].some((column) => column.onUpdateFn !== undefined)
  if (builder) {
    for (const group of groups) {
      const { values, aliases, names } = valuesOf(model, group)
      const set: Record<string, SQL> = {}
      names.forEach((name, i) => {
        set[name] = sql.raw(`"v"."c${i}"`)
      })
      const updated = (await tx
        .update(model.table)
        .set(set)
        .from(sql`(VALUES ${values}) AS "v" (${aliases})`)
        .where(sql`${model.uid} = "v"."u"`)
        .returning(getTableColumns(model.table))) as Array<Record<string, unknown>>
      for (const row of updated) rows.set(String(row.uid), row)
    }
  } else {
    for (const group of groups) {
      const { values, aliases, names } = valuesOf(model, group)
      const set = sql.join(
        names.map((name, i) => sql`${t.name(name)} = ${sql.raw(`"v"."c${i}"`)}`),
        sql`, `,
      )
      parts.push(
        sql`UPDATE ${t.from} SET ${set} FROM (VALUES ${values}) AS "v" (${aliases}) WHERE ${t.column('uid')} = "v"."u" RETURNING ${t.columns}`,
      )
    }
  }
  if (parts.length === 0) return rows
  const statement =
    parts.length === 1
      ? parts[0]!
      : sql`WITH ${sql.join(
          parts.map((part, i) => sql`${sql.raw(`"w${i}"`)} AS (${part})`),
          sql`, `,
        )} ${sql.join(
          parts.map((_, i) => sql.raw(`SELECT * FROM "w${i}"`)),
          sql` UNION ALL `,
        )}`
  for (const raw of rowsOf<Record<string, unknown>>(await tx.execute(statement))) {
    const row = t.decode(raw)
    rows.set(String(row.uid), row)
  }
  return rows
}

/** The INSERT of `rows`, as drizzle's insert builder writes their values. */
function insertSql(model: ResolvedModel<unknown>, rows: Array<Record<string, unknown>>): SQL {
  const t = tableSql(model.table)
  const columns = insertable(model)
  const values = sql.join(
    rows.map(
      (row) =>
        sql`(${sql.join(
          columns.map(([key, column]) => insertValue(row[key], column)),
          sql`, `,
        )})`,
    ),
    sql`, `,
  )
  return sql`INSERT INTO ${t.from} (${t.names(columns.map(([key]) => key))}) VALUES ${values} RETURNING ${t.columns}`
}

/** Updates grouped by the set of columns they set. */
function byColumns(updates: RowUpdate[]): RowUpdate[][] {
  const groups = new Map<string, RowUpdate[]>()
  for (const update of updates) {
    const key = Object.keys(update.fields).sort().join('\u0000')
    const group = groups.get(key)
    if (group) group.push(update)
    else groups.set(key, [update])
  }
  return [...groups.values()]
}

/** `(uid, value, ...)` rows of updates that set the same columns, each value cast to its column's type. */
function valuesOf(
  model: ResolvedModel<unknown>,
  group: RowUpdate[],
): { values: SQL; aliases: SQL; names: string[] } {
  const names = Object.keys(group[0]!.fields).sort()
  const columns = names.map((name) => model.columns.get(name)!)
  const values = sql.join(
    group.map(
      (update) =>
        sql`(${sql.join(
          [
            sql`${sql.param(update.uid, model.uid)}::${columnType(model.uid)}`,
            ...columns.map(
              (column, i) => sql`${sql.param(update.fields[names[i]!], column)}::${columnType(column)}`,
            ),
          ],
          sql`, `,
        )})`,
    ),
    sql`, `,
  )
  const aliases = sql.raw(['"u"', ...names.map((_, i) => `"c${i}"`)].join(', '))
  return { values, aliases, names }
}

const cache = new WeakMap<ResolvedModel<unknown>, Array<[string, PgColumn]>>()

/** The columns an insert lists, in table order: as drizzle's `shouldDisableInsert` (internal), not generated ones unless `byDefault`. */
function insertable(model: ResolvedModel<unknown>): Array<[string, PgColumn]> {
  let columns = cache.get(model)
  if (!columns) {
    columns = (Object.entries(getTableColumns(model.table)) as Array<[string, PgColumn]>).filter(
      ([, column]) => column.generated === undefined || column.generated.type === 'byDefault',
    )
    cache.set(model, columns)
  }
  return columns
}

/** One value of a row, as drizzle's insert builder puts it. */
function insertValue(value: unknown, column: PgColumn): SQL | Param {
  if (value !== undefined) return is(value, SQL) ? value : new Param(value, column)
  if (column.defaultFn !== undefined) {
    const made = column.defaultFn()
    return is(made, SQL) ? made : new Param(made, column)
  }
  if (!column.default && column.onUpdateFn !== undefined) {
    const made = column.onUpdateFn()
    return is(made, SQL) ? made : new Param(made, column)
  }
  return sql`default`
}
