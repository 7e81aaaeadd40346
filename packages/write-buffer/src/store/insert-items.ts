import type { Json } from '@tidesync/ipc'
import { copyable, copyLines, decodeCopyRow, encodeCopyRows, textStorable } from './copy-text.js'
import type { TableMeta } from './table-meta.js'

/**
 * How queued inserts are kept in the IPC store: each item of a table's `ins` list holds the rows
 * one process queued in one event-loop turn (see GroupCommit), in one of two forms, both JSON
 * text:
 *
 * - rows: the JSON text `[{...}, {...}]` of the rows' driver JSON (see `codec.ts`);
 * - COPY text: `#<rows>["column",...]\n` then the rows as the lines of a `COPY ... FROM` (see
 *   `copy-text.ts`): consecutive rows that set the same columns. Not JSON text, so the text is
 *   neither escaped when stored nor unescaped when read (JSON text never starts with `#`).
 *
 * Why COPY text: a flush that COPYs hands the text to the database as it is, instead of parsing
 * every row out of JSON and writing it again (that was most of the flush's own CPU time; see
 * the README's profile). The text is made once, when the turn's rows are stored, and reads
 * back to the same driver JSON (`runRows`) for the INSERT path, `get()` and dead letters. Rows
 * whose columns or values have no exact COPY text are kept as JSON rows. Older items (a JSON
 * row that is not text) still read.
 */

/**
 * Consecutive queued rows with the same columns, as COPY text. A class, so it is never taken
 * for a JSON row (whose columns could be named like its fields).
 */
export class TextRun {
  constructor(
    /** The columns (drizzle keys), in field order. */
    readonly keys: string[],
    /** How many rows (lines). */
    readonly count: number,
    readonly text: string,
  ) {}
}

/** Queued rows in order: JSON rows, or a run of COPY text. */
export type InsertRun = { rows: Record<string, Json>[] } | TextRun

/** The list items for one turn's rows of a table, in order. `asText`: keep COPY-able runs as COPY text. */
export function encodeInsertItems(meta: TableMeta, rows: Record<string, Json>[], asText: boolean): string[] {
  if (!asText) return [JSON.stringify(rows)]
  const items: string[] = []
  let pendingRows: Record<string, Json>[] = []
  const flushRows = () => {
    if (pendingRows.length > 0) items.push(JSON.stringify(pendingRows))
    pendingRows = []
  }
  for (const run of runsBySignature(rows)) {
    const keys = Object.keys(run[0] as Record<string, Json>)
    const columns = keys.map((key) => meta.column(key))
    // One flat string, the header line included (see encodeCopyRows).
    const item =
      keys.length > 0 && copyable(columns) && textStorable(columns)
        ? encodeCopyRows(columns, keys, run, `${TEXT_MARK}${run.length}${JSON.stringify(keys)}`)
        : null
    if (item === null) {
      pendingRows.push(...run)
      continue
    }
    flushRows()
    items.push(item)
  }
  flushRows()
  return items
}

const TEXT_MARK = '#'

/** The queued rows of one list item, in order (any form). */
export function decodeInsertItem(item: Json): InsertRun[] {
  if (typeof item !== 'string') return [{ rows: [item as Record<string, Json>] }]
  if (!item.startsWith(TEXT_MARK)) return [{ rows: JSON.parse(item) as Record<string, Json>[] }]
  const keysAt = item.indexOf('[')
  const textAt = item.indexOf('\n', keysAt) + 1
  const keys = JSON.parse(item.slice(keysAt, textAt - 1)) as string[]
  return [new TextRun(keys, Number(item.slice(1, keysAt)), item.slice(textAt))]
}

export function isTextRun(run: unknown): run is TextRun {
  return run instanceof TextRun
}

/** The rows of a run as driver JSON (a text run is decoded line by line). */
export function runRows(meta: TableMeta, run: InsertRun): Record<string, Json>[] {
  if (!isTextRun(run)) return run.rows
  const columns = run.keys.map((key) => meta.column(key))
  return copyLines(run.text).map((line) => decodeCopyRow(columns, run.keys, line))
}

/** Splits rows into runs of consecutive rows with the same columns (order is kept). */
export function runsBySignature(rows: Record<string, Json>[]): Record<string, Json>[][] {
  const groups: Record<string, Json>[][] = []
  let last: Record<string, Json>[] | undefined
  let lastKeys: string[] = []
  for (const row of rows) {
    if (last && sameColumns(row, lastKeys)) last.push(row)
    else {
      last = [row]
      lastKeys = Object.keys(row)
      groups.push(last)
    }
  }
  return groups
}

/**
 * Whether `row` has exactly the columns `keys` (in any order; rows are usually built alike, so
 * the order usually matches). No allocation: this runs for every queued row.
 */
function sameColumns(row: Record<string, Json>, keys: string[]): boolean {
  let count = 0
  for (const key in row) {
    if (key !== keys[count] && !keys.includes(key)) return false
    count++
  }
  return count === keys.length
}
