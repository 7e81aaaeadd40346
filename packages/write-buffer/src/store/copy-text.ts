import type { Json } from '@tidesync/ipc'
import type { ColumnMeta } from './table-meta.js'

/**
 * Rows in PostgreSQL's COPY text format: one line per row, fields separated by tabs, `\N` for
 * null, backslash, newline, carriage return and tab escaped. The text of a value is what its
 * column type's input function reads, as `jsonb_to_recordset` gives it from the value's driver
 * JSON (see `codec.ts`): strings as they are, numbers and booleans as JSON writes them, JSON
 * columns as JSON text. So a COPY of the text writes what an INSERT of the JSON rows writes.
 */

/** Columns whose values can go through COPY text at all (arrays would need array literals). */
export function copyable(columns: ColumnMeta[]): boolean {
  return columns.every((c) => c.column.dataType !== 'array')
}

/**
 * Columns whose values can also come back from COPY text exactly as they went in (driver JSON),
 * so rows may be kept as text: the types `decodeCopyRow` knows. Custom types cannot (their
 * driver value may be a number or a string, the text does not tell).
 */
export function textStorable(columns: ColumnMeta[]): boolean {
  return columns.every((c) => STORABLE.has(c.column.dataType))
}
const STORABLE = new Set(['number', 'bigint', 'string', 'boolean', 'date', 'json', 'buffer'])

/**
 * The rows (driver JSON, every row with exactly the columns `keys`) as COPY text, after the line
 * `head` when given, or null when some value has no COPY text here (an object in a non-JSON
 * column, a string that is not well-formed UTF-16): then they must go through an INSERT, where
 * PostgreSQL judges the value.
 */
export function encodeCopyRows(
  columns: ColumnMeta[],
  keys: string[],
  rows: Record<string, Json>[],
  head?: string,
): string | null {
  const json = columns.map((c) => c.column.dataType === 'json')
  // Lines joined once: one flat string. Appending field by field would leave a tree of small
  // strings (a "cons string") that the store keeps until the flush: the garbage collector then
  // walks and copies every piece of it for as long as the rows stay queued.
  const first = head === undefined ? 0 : 1
  const lines: string[] = new Array(first + rows.length + 1)
  if (head !== undefined) lines[0] = head
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Record<string, Json>
    let line = ''
    for (let i = 0; i < keys.length; i++) {
      const field = copyField(row[keys[i] as string], json[i] as boolean)
      if (field === null) return null
      line = i === 0 ? field : `${line}\t${field}`
    }
    lines[first + r] = line
  }
  lines[first + rows.length] = ''
  return lines.join('\n')
}

function copyField(value: Json | undefined, json: boolean): string | null {
  if (value === null || value === undefined) return '\\N'
  if (json) return escapeCopy(JSON.stringify(value))
  if (typeof value === 'string') return isWellFormed(value) ? escapeCopy(value) : null
  if (typeof value === 'number') return String(value)
  if (typeof value === 'boolean') return value ? 't' : 'f'
  return null
}

/** The lines (rows) of COPY text, each with its newline. */
export function copyLines(text: string): string[] {
  const lines: string[] = []
  let start = 0
  for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
    lines.push(text.slice(start, end + 1))
    start = end + 1
  }
  return lines
}

/**
 * One line of COPY text (as written by `encodeCopyRows` for these columns, which must be
 * `textStorable`) back to the row's driver JSON.
 */
export function decodeCopyRow(columns: ColumnMeta[], keys: string[], line: string): Record<string, Json> {
  const fields = (line.endsWith('\n') ? line.slice(0, -1) : line).split('\t')
  const row: Record<string, Json> = {}
  for (let i = 0; i < keys.length; i++) {
    const field = fields[i] ?? '\\N'
    row[keys[i] as string] = field === '\\N' ? null : fromText(columns[i] as ColumnMeta, unescapeCopy(field))
  }
  return row
}

function fromText(column: ColumnMeta, text: string): Json {
  switch (column.column.dataType) {
    case 'number':
      return Number(text)
    case 'boolean':
      return text === 't'
    case 'json':
      return JSON.parse(text) as Json
    default:
      return text
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const nativeWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed

/**
 * Whether the string is valid UTF-16 (no lone surrogate): on its way to UTF-8 the driver would
 * turn a lone one into U+FFFD, where an INSERT lets PostgreSQL refuse the row.
 */
function isWellFormed(text: string): boolean {
  return nativeWellFormed ? nativeWellFormed.call(text) : !LONE_SURROGATE.test(text)
}

const SPECIAL = /[\\\n\r\t]/
const SPECIAL_ALL = /[\\\n\r\t]/g
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const UNESCAPES: Record<string, string> = { '\\': '\\', n: '\n', r: '\r', t: '\t' }

function escapeCopy(text: string): string {
  return SPECIAL.test(text) ? text.replace(SPECIAL_ALL, (c) => ESCAPES[c] as string) : text
}

function unescapeCopy(text: string): string {
  return text.includes('\\') ? text.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : text
}
