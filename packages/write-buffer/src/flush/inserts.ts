import type { Json } from '@tidesync/ipc'
import { type SQL, sql } from 'drizzle-orm'
import type { TableMeta } from '../store/table-meta.js'
import { applyChunks } from './isolate.js'
import { type Executor, recordset, run, type StatementCounter } from './sql-util.js'

/** Rows per INSERT statement. */
export const INSERT_CHUNK = 1000

export interface InsertOutcome {
  inserted: number
  poison: { row: Record<string, Json>; error: unknown }[]
}

/**
 * Inserts queued rows in order, in chunks of 1,000 rows per statement (one JSON parameter, so
 * no bind-parameter limit). Consecutive rows that set the same columns share a statement;
 * columns a row leaves out get their database default. All chunks run in one savepoint,
 * pipelined; when the database refuses a row, the chunks are retried one by one and bisected:
 * poison rows are returned, the others are inserted.
 */
export async function insertRows(
  tx: Executor,
  meta: TableMeta,
  rows: Record<string, Json>[],
  counter: StatementCounter,
): Promise<InsertOutcome> {
  const outcome: InsertOutcome = { inserted: 0, poison: [] }
  const chunks: Record<string, Json>[][] = []
  for (const group of groupBySignature(rows)) {
    for (let start = 0; start < group.length; start += INSERT_CHUNK) {
      chunks.push(group.slice(start, start + INSERT_CHUNK))
    }
  }
  await applyChunks(
    tx,
    chunks,
    {
      prepare: (items) => prepareInsert(meta, items),
      apply: async (savepoint, queries) => {
        for (const query of queries) await run(savepoint, query, counter)
      },
      onApplied: (items) => {
        outcome.inserted += items.length
      },
      onPoison: (row, error) => outcome.poison.push({ row, error }),
    },
    counter,
  )
  return outcome
}

/** The INSERT of one chunk (rows with the same columns), or one per row when they set none. */
function prepareInsert(meta: TableMeta, rows: Record<string, Json>[]): SQL[] {
  const keys = Object.keys(rows[0] ?? {})
  if (keys.length === 0) return rows.map(() => sql`insert into ${meta.sqlName} default values`)
  const columns = keys.map((key) => meta.column(key))
  const records = rows.map((row) => Object.fromEntries(keys.map((key, i) => [`c${i}`, row[key] ?? null])))
  const source = recordset(
    records,
    columns.map((c, i) => ({ name: `c${i}`, type: c.sqlType })),
  )
  const target = sql.join(
    columns.map((c) => sql.identifier(c.name)),
    sql`, `,
  )
  const values = sql.join(
    columns.map((_c, i) => sql.raw(`v.c${i}`)),
    sql`, `,
  )
  return [sql`insert into ${meta.sqlName} (${target}) select ${values} from ${source}`]
}

/** Splits rows into runs of consecutive rows with the same columns (order is kept). */
function groupBySignature(rows: Record<string, Json>[]): Record<string, Json>[][] {
  const groups: Record<string, Json>[][] = []
  let last: Record<string, Json>[] | undefined
  let lastKeys: string[] = []
  for (const row of rows) {
    const keys = Object.keys(row)
    if (last && sameColumns(keys, lastKeys, last[0]!)) last.push(row)
    else {
      last = [row]
      lastKeys = keys
      groups.push(last)
    }
  }
  return groups
}

/** Same column set (rows are usually built alike, so the key order usually matches too). */
function sameColumns(keys: string[], previous: string[], previousRow: Record<string, Json>): boolean {
  if (keys.length !== previous.length) return false
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] !== previous[i] && !Object.hasOwn(previousRow, keys[i] as string)) return false
  }
  return true
}
