import type { ColumnarRecords, PullResult, RecordWithMeta } from '@tidesync/protocol'
import { TidesyncServerError } from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import { decodeColumns } from '../schema/record-codec.js'

/**
 * The upserts of a pull page, whichever way they came: `format: 'columns'` pages are decoded
 * straight into local rows (`decodeColumns`), record pages are passed on as they are.
 */
export function upsertsOf(model: ModelInfo, page: PullResult): RecordWithMeta[] {
  const columnar = page.columns as ColumnarRecords | undefined
  if (!columnar) return page.upserts
  const { columns, rows, meta, clocks } = columnar
  const valid =
    Array.isArray(columns) &&
    Array.isArray(rows) &&
    Array.isArray(meta) &&
    Array.isArray(clocks) &&
    rows.length === meta.length &&
    rows.every(Array.isArray) &&
    meta.every(Array.isArray)
  if (!valid)
    throw new TidesyncServerError('INTERNAL', 'Malformed columnar page from the server', true, 'sync:pull')
  return decodeColumns(model, columnar)
}
