import type { Json } from '@tidesync/ipc'
import { type SQL, sql } from 'drizzle-orm'
import { type CopyIn, copyInOf } from '../db/copy-in.js'
import { copyable, copyLines, encodeCopyRows } from '../store/copy-text.js'
import { type InsertRun, isTextRun, runRows, runsBySignature, TextRun } from '../store/insert-items.js'
import type { ColumnMeta, TableMeta } from '../store/table-meta.js'
import { applyChunks } from './isolate.js'
import { type Executor, recordset, run, type StatementCounter } from './sql-util.js'

/** Rows per INSERT statement. */
export const INSERT_CHUNK = 1000
/** Rows per COPY statement (about). */
export const COPY_CHUNK = 10_000

/** How queued rows go to the database: COPY when the driver has it here, else multi-row INSERTs. */
export type InsertMethod = 'copy' | 'insert'

export interface InsertOutcome {
  inserted: number
  poison: { row: Record<string, Json>; error: unknown }[]
}

/**
 * What one statement writes, and the unit poison isolation splits: COPY text (one row or a run
 * of them), or one JSON row.
 */
type Piece = TextRun | Record<string, Json>

/** One chunk's statement: a COPY with its data, or INSERT statement(s). */
type Prepared = { copy: string; data: string[] } | { queries: SQL[] }

/**
 * Inserts queued rows in order. Consecutive rows that set the same columns share a statement;
 * columns a row leaves out get their database default. With `method: 'copy'` and a driver that
 * has COPY here (see `db/copy-in.ts`), rows go in one `COPY` per about 10,000 rows: runs kept as
 * COPY text are sent as they are, JSON rows are written as COPY text now. Otherwise one
 * `INSERT ... SELECT FROM jsonb_to_recordset($1)` per 1,000 rows (one JSON parameter: no
 * bind-parameter limit). All chunks run in one savepoint, pipelined; when the database refuses
 * a row, the chunks are retried one by one and bisected down to single rows: poison rows are
 * returned, the others are inserted.
 */
export async function insertRows(
  tx: Executor,
  meta: TableMeta,
  runs: InsertRun[],
  counter: StatementCounter,
  method: InsertMethod = 'copy',
): Promise<InsertOutcome> {
  const outcome: InsertOutcome = { inserted: 0, poison: [] }
  if (runs.length === 0) return outcome
  const copyIn = method === 'copy' ? await copyInOf(tx) : undefined
  await applyChunks(
    tx,
    copyIn ? copyChunks(meta, runs) : insertChunks(meta, runs),
    {
      prepare: (pieces) => prepare(meta, pieces, copyIn !== undefined),
      apply: async (savepoint, prepared) => {
        if ('copy' in prepared) {
          counter.statements++
          await (copyIn as CopyIn)(prepared.copy, prepared.data)
          return
        }
        for (const query of prepared.queries) await run(savepoint, query, counter)
      },
      onApplied: (pieces) => {
        for (const piece of pieces) outcome.inserted += isTextPiece(piece) ? piece.count : 1
      },
      onPoison: (piece, error) => {
        for (const row of pieceRows(meta, piece)) outcome.poison.push({ row, error })
      },
      split: (piece) => (isTextPiece(piece) && piece.count > 1 ? splitText(piece) : [piece]),
    },
    counter,
  )
  return outcome
}

function isTextPiece(piece: Piece): piece is TextRun {
  return isTextRun(piece)
}

/**
 * Chunks for COPY: consecutive text runs with the same columns and runs of JSON rows with the
 * same columns, up to about COPY_CHUNK rows each. JSON rows of columns COPY cannot carry go in
 * chunks of INSERT_CHUNK (they are inserted).
 */
function copyChunks(meta: TableMeta, runs: InsertRun[]): Piece[][] {
  const chunks: Piece[][] = []
  let current: TextRun[] = []
  let currentKeys: string[] | undefined
  let rows = 0
  const close = () => {
    if (current.length > 0) chunks.push(current)
    current = []
    currentKeys = undefined
    rows = 0
  }
  for (const run of runs) {
    if (isTextRun(run)) {
      if (!currentKeys || !sameKeys(currentKeys, run.keys) || rows >= COPY_CHUNK) close()
      current.push(run)
      currentKeys = run.keys
      rows += run.count
      continue
    }
    close()
    for (const group of runsBySignature(run.rows)) {
      const size = copyable(columnsOf(meta, group[0] as Record<string, Json>)) ? COPY_CHUNK : INSERT_CHUNK
      for (let start = 0; start < group.length; start += size) chunks.push(group.slice(start, start + size))
    }
  }
  close()
  return chunks
}

/** Chunks for INSERT: every row as JSON, INSERT_CHUNK rows of the same columns per chunk. */
function insertChunks(meta: TableMeta, runs: InsertRun[]): Piece[][] {
  const rows: Record<string, Json>[] = []
  for (const run of runs) for (const row of runRows(meta, run)) rows.push(row)
  const chunks: Piece[][] = []
  for (const group of runsBySignature(rows)) {
    for (let start = 0; start < group.length; start += INSERT_CHUNK) {
      chunks.push(group.slice(start, start + INSERT_CHUNK))
    }
  }
  return chunks
}

function sameKeys(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((key, i) => key === b[i])
}

function columnsOf(meta: TableMeta, row: Record<string, Json>): ColumnMeta[] {
  return Object.keys(row).map((key) => meta.column(key))
}

/** A text run split into single-row runs (to isolate a poison row). */
function splitText(run: TextRun): TextRun[] {
  return copyLines(run.text).map((text) => new TextRun(run.keys, 1, text))
}

function pieceRows(meta: TableMeta, piece: Piece): Record<string, Json>[] {
  return isTextPiece(piece) ? runRows(meta, piece) : [piece]
}

/**
 * The statement(s) of one chunk: pieces of the same columns, all text or all JSON rows. A COPY
 * when `copy` and the columns allow it (JSON rows are written as COPY text now; when a value has
 * no COPY text, the chunk is inserted), else INSERTs of INSERT_CHUNK rows, or one per row when
 * the rows set no column.
 */
function prepare(meta: TableMeta, pieces: Piece[], copy: boolean): Prepared {
  const first = pieces[0] as Piece
  if (isTextPiece(first)) {
    const columns = first.keys.map((key) => meta.column(key))
    if (copy) return { copy: copyStatement(meta, columns), data: (pieces as TextRun[]).map((p) => p.text) }
    const rows = (pieces as TextRun[]).flatMap((p) => runRows(meta, p))
    return { queries: insertQueries(meta, columns, first.keys, rows) }
  }
  const rows = pieces as Record<string, Json>[]
  const keys = Object.keys(first)
  if (keys.length === 0) return { queries: rows.map(() => sql`insert into ${meta.sqlName} default values`) }
  const columns = keys.map((key) => meta.column(key))
  if (copy && copyable(columns)) {
    const text = encodeCopyRows(columns, keys, rows)
    if (text !== null) return { copy: copyStatement(meta, columns), data: [text] }
  }
  return { queries: insertQueries(meta, columns, keys, rows) }
}

/** `COPY "schema"."table" ("a", "b")` (the driver adds `FROM ...`). */
function copyStatement(meta: TableMeta, columns: ColumnMeta[]): string {
  const table = meta.schema ? `${quote(meta.schema)}.${quote(meta.name)}` : quote(meta.name)
  return `copy ${table} (${columns.map((c) => quote(c.name)).join(', ')})`
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`
}

/** One `INSERT ... SELECT FROM jsonb_to_recordset($1)` per INSERT_CHUNK rows of the same columns. */
function insertQueries(
  meta: TableMeta,
  columns: ColumnMeta[],
  keys: string[],
  rows: Record<string, Json>[],
): SQL[] {
  const target = sql.join(
    columns.map((c) => sql.identifier(c.name)),
    sql`, `,
  )
  const values = sql.join(
    columns.map((_c, i) => sql.raw(`v.c${i}`)),
    sql`, `,
  )
  const definition = columns.map((c, i) => ({ name: `c${i}`, type: c.sqlType }))
  const queries: SQL[] = []
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const records = rows
      .slice(start, start + INSERT_CHUNK)
      .map((row) => Object.fromEntries(keys.map((key, i) => [`c${i}`, row[key] ?? null])))
    queries.push(
      sql`insert into ${meta.sqlName} (${target}) select ${values} from ${recordset(records, definition)}`,
    )
  }
  return queries
}
