import type {
  ColumnarRecords,
  Hlc,
  JsonValue,
  PullFormat,
  RecordWithMeta,
  WireMeta,
} from '@tidesync/protocol'
import { TidesyncValidationError } from '../errors.js'
import { rowToWire, syntheticWireMeta } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'

/** A record state a pull sends: its row and wire metadata (null: written outside tidesync). @internal */
export interface PageState {
  row: Record<string, unknown>
  meta: WireMeta | null
}

/** `sync:pull`'s `format` (PROTOCOL.md section 9). @internal */
export function parseFormat(value: unknown): PullFormat {
  if (value === undefined || value === 'records') return 'records'
  if (value === 'columns') return 'columns'
  throw new TidesyncValidationError('BAD_REQUEST', "expected 'records' or 'columns'", 'format')
}

/** The states as `RecordWithMeta` objects (`format: 'records'`). @internal */
export function recordsOf(
  model: ResolvedModel<unknown>,
  states: readonly PageState[],
  now: Date,
): RecordWithMeta[] {
  const synthetic = syntheticWireMeta(now)
  return states.map(({ row, meta }) => ({ record: rowToWire(model, row), meta: meta ?? synthetic }))
}

/** Whether two clock maps hold the same clocks (no allocation). */
function sameClocks(a: Record<string, Hlc>, b: Record<string, Hlc>): boolean {
  let count = 0
  for (const key in a) {
    if (a[key] !== b[key]) return false
    count++
  }
  for (const _ in b) count--
  return count === 0
}

/**
 * The states in columns (`format: 'columns'`): one array of values per record, one metadata
 * tuple per record, and each distinct clock map once. Records written together (an import, a
 * batch) share their clocks, so the page carries them once instead of once per record; the
 * comparison with the previous record's clocks keeps that cheap.
 * @internal
 */
export function columnsOf(
  model: ResolvedModel<unknown>,
  states: readonly PageState[],
  now: Date,
): ColumnarRecords {
  const columns = [...model.columns.keys()]
  const rows: JsonValue[][] = new Array(states.length)
  const meta: ColumnarRecords['meta'] = new Array(states.length)
  const clocks: Array<Record<string, Hlc>> = []
  const indexes = new Map<string, number>()
  let last: Record<string, Hlc> | undefined
  let lastIndex = -1
  const synthetic = syntheticWireMeta(now)
  for (let i = 0; i < states.length; i++) {
    const { row, meta: stored } = states[i]!
    const values: JsonValue[] = new Array(columns.length)
    for (let c = 0; c < columns.length; c++) values[c] = toWireValue(row[columns[c]!])
    rows[i] = values
    const m = stored ?? synthetic
    const clock = m.clocks
    if (!last || !sameClocks(clock, last)) {
      const signature = JSON.stringify(clock)
      let index = indexes.get(signature)
      if (index === undefined) {
        index = clocks.push(clock) - 1
        indexes.set(signature, index)
      }
      last = clock
      lastIndex = index
    }
    meta[i] = [m.created_at, m.updated_at, m.deleted_at, m.rev, lastIndex]
  }
  return { columns, rows, meta, clocks }
}
