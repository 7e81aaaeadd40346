import type { Json } from '@tidesync/ipc'
import { type SQL, sql } from 'drizzle-orm'
import type { TableMeta } from '../store/table-meta.js'
import { applyChunks } from './isolate.js'
import type { RowChange } from './plan.js'
import { type Executor, recordset, run, type StatementCounter } from './sql-util.js'

/** Rows per UPDATE statement. */
export const UPDATE_CHUNK = 1000

export interface ChangeOutcome {
  updated: number
  /** Rows the statement matched no row for (not inserted yet, or deleted). */
  unmatched: RowChange[]
  poison: { row: RowChange; error: unknown }[]
}

/**
 * Applies increments and updates: one UPDATE per row with all its pending columns, many rows
 * per statement:
 *
 *   update t set views = coalesce(t.views, 0) + v.a0, title = v.s0
 *   from jsonb_to_recordset($1::jsonb) as v(i integer, k0 integer, a0 numeric, s0 text)
 *   where t.id = v.k0 returning v.i
 *
 * Rows are grouped by the set of columns they change, locked in key order by the statement
 * before it updates them (a stable lock order against deadlocks), and sent 1,000 per statement (in one savepoint; see applyChunks). `returning` tells which rows matched:
 * the others are returned as unmatched, never dropped.
 */
export async function applyRowChanges(
  tx: Executor,
  meta: TableMeta,
  rows: Iterable<RowChange>,
  counter: StatementCounter,
): Promise<ChangeOutcome> {
  const outcome: ChangeOutcome = { updated: 0, unmatched: [], poison: [] }
  const chunks: RowChange[][] = []
  for (const group of groupByColumns(rows)) {
    for (let start = 0; start < group.length; start += UPDATE_CHUNK) {
      chunks.push(group.slice(start, start + UPDATE_CHUNK))
    }
  }
  await applyChunks(
    tx,
    chunks,
    {
      prepare: (items) => prepareUpdate(meta, items),
      apply: async (savepoint, query) => {
        const returned = await run<{ i: number }>(savepoint, query, counter)
        return new Set(returned.map((r) => Number(r.i)))
      },
      onApplied: (items, matched) => {
        outcome.updated += matched.size
        items.forEach((row, i) => {
          if (!matched.has(i)) outcome.unmatched.push(row)
        })
      },
      onPoison: (row, error) => outcome.poison.push({ row, error }),
    },
    counter,
  )
  return outcome
}

/** The UPDATE of one chunk (rows that change the same columns); `returning v.i` names the matched rows. */
function prepareUpdate(meta: TableMeta, rows: RowChange[]): SQL {
  const first = rows[0]
  if (!first) throw new Error('prepareUpdate() needs rows')
  const setColumns = [...first.set.keys()].sort()
  const addColumns = [...first.add.keys()].sort()
  const records = rows.map((row, index) => {
    const record: Record<string, Json> = { i: index }
    row.key.forEach((value, k) => {
      record[`k${k}`] = value
    })
    setColumns.forEach((column, s) => {
      record[`s${s}`] = row.set.get(column) ?? null
    })
    addColumns.forEach((column, a) => {
      record[`a${a}`] = (row.add.get(column) ?? 0n).toString()
    })
    return record
  })
  const definition = [
    { name: 'i', type: 'integer' },
    ...meta.keyColumns.map((c, k) => ({ name: `k${k}`, type: c.sqlType })),
    ...setColumns.map((column, s) => ({ name: `s${s}`, type: meta.column(column).sqlType })),
    ...addColumns.map((_column, a) => ({ name: `a${a}`, type: 'numeric' })),
  ]
  const assignments: SQL[] = []
  for (const [s, column] of setColumns.entries()) {
    const a = addColumns.indexOf(column)
    const value = a >= 0 ? sql.raw(`coalesce(v.s${s}, 0) + v.a${a}`) : sql.raw(`v.s${s}`)
    assignments.push(sql`${sql.identifier(meta.column(column).name)} = ${value}`)
  }
  for (const [a, column] of addColumns.entries()) {
    if (first.set.has(column)) continue
    const name = sql.identifier(meta.column(column).name)
    assignments.push(sql`${name} = coalesce(t.${name}, 0) + ${sql.raw(`v.a${a}`)}`)
  }
  const where = sql.join(
    meta.keyColumns.map((c, k) => sql`t.${sql.identifier(c.name)} = ${sql.raw(`v.k${k}`)}`),
    sql` and `,
  )
  // The rows are locked first, in key order (a one-time filter waits for it), then updated:
  // the UPDATE alone locks them in whatever order its plan visits them, and a writer that locks
  // the same rows in key order (the sync server's batches) could deadlock with it.
  const keys = sql.join(
    meta.keyColumns.map((c) => sql`l.${sql.identifier(c.name)}`),
    sql`, `,
  )
  const lockedWhere = sql.join(
    meta.keyColumns.map((c, k) => sql`l.${sql.identifier(c.name)} = ${sql.raw(`r.k${k}`)}`),
    sql` and `,
  )
  return sql`with v as materialized (select * from ${recordset(records, definition)}), locked as materialized (select 1 from ${meta.sqlName} as l where exists (select 1 from v as r where ${lockedWhere}) order by ${keys} for update of l) update ${meta.sqlName} as t set ${sql.join(assignments, sql`, `)} from v where ${where} and (select count(*) from locked) >= 0 returning v.i`
}

/** Groups rows by the columns they set and add; each group sorted by key. */
function groupByColumns(rows: Iterable<RowChange>): RowChange[][] {
  const groups = new Map<string, RowChange[]>()
  for (const row of rows) {
    if (row.set.size === 0 && row.add.size === 0) continue
    const signature = `${[...row.set.keys()].sort().join(',')}|${[...row.add.keys()].sort().join(',')}`
    const group = groups.get(signature) ?? []
    group.push(row)
    groups.set(signature, group)
  }
  for (const group of groups.values()) group.sort((a, b) => compareKeys(a.key, b.key))
  return [...groups.values()]
}

function compareKeys(a: Json[], b: Json[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const y = b[i]
    if (x === y) continue
    if (typeof x === 'number' && typeof y === 'number') return x - y
    return String(x) < String(y) ? -1 : 1
  }
  return 0
}
