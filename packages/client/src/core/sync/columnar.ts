import type { ColumnarRecords, PullResult, RecordWithMeta } from '@tidesync/protocol'
import { TidesyncServerError } from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import { decodeColumns } from '../schema/record-codec.js'

const isObject = (value: unknown) => value !== null && typeof value === 'object' && !Array.isArray(value)

/**
 * What is wrong with a columnar page (PROTOCOL.md section 9), or null when it is well formed:
 * the arrays line up, every record has a string uid and one value per column, and every
 * metadata tuple has its dates, an integer revision and a clock index inside `clocks`. Values
 * are not checked further: the same as the `upserts` of a records page.
 */
function columnarProblem(columnar: ColumnarRecords): string | null {
  const { columns, rows, meta, clocks } = columnar
  if (!Array.isArray(columns) || !Array.isArray(rows) || !Array.isArray(meta) || !Array.isArray(clocks))
    return 'columns, rows, meta and clocks must be arrays'
  if (!columns.every((column) => typeof column === 'string')) return 'a column name is not a string'
  const uid = columns.indexOf('uid')
  if (uid < 0) return 'no uid column'
  if (rows.length !== meta.length) return `${rows.length} rows but ${meta.length} metadata tuples`
  if (!clocks.every(isObject)) return 'a clock map is not an object'
  const width = columns.length
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    if (!Array.isArray(row) || row.length !== width) return `row ${i} does not have ${width} values`
    if (typeof row[uid] !== 'string') return `row ${i} has no string uid`
    const tuple = meta[i]
    if (
      !Array.isArray(tuple) ||
      tuple.length !== 5 ||
      typeof tuple[0] !== 'string' ||
      typeof tuple[1] !== 'string' ||
      (tuple[2] !== null && typeof tuple[2] !== 'string') ||
      !Number.isInteger(tuple[3]) ||
      !Number.isInteger(tuple[4]) ||
      tuple[4] < 0 ||
      tuple[4] >= clocks.length
    )
      return `metadata tuple ${i} is not [created_at, updated_at, deleted_at, rev, clock index]`
  }
  return null
}

/**
 * The upserts of a pull page, whichever way they came: `format: 'columns'` pages are checked
 * (`columnarProblem`) and decoded straight into local rows (`decodeColumns`), record pages are
 * passed on as they are. A malformed columnar page throws a `TidesyncServerError` (`INTERNAL`,
 * retryable) before anything is written.
 */
export function upsertsOf(model: ModelInfo, page: PullResult): RecordWithMeta[] {
  const columnar = page.columns as ColumnarRecords | undefined
  if (!columnar) return page.upserts
  const problem = isObject(columnar) ? columnarProblem(columnar) : 'not an object'
  if (problem)
    throw new TidesyncServerError(
      'INTERNAL',
      `Malformed columnar page from the server: ${problem}`,
      true,
      'sync:pull',
    )
  return decodeColumns(model, columnar)
}
