import type { ColumnarRecords, JsonValue, RecordWithMeta, WireRecord } from '@tidesync/protocol'
import type { ModelInfo } from './model.js'

type Row = Record<string, unknown>

/** How a wire value of one column becomes a local value. */
const PLAIN = 0
const DATE = 1
const COUNTER = 2

/**
 * What decoding a model's records needs, worked out once per model: the column keys in one
 * order, how each converts, and which keys also name something on `Object.prototype` (only those
 * need an own-property check). Decoding a record is then one loop over plain arrays, and every
 * decoded record gets its keys in the same order (one object shape for the engine).
 * @internal
 */
export interface ModelCodec {
  readonly keys: readonly string[]
  readonly kinds: readonly number[]
  readonly inherited: readonly boolean[]
  /** Indexes (into `keys`) of the counter columns. */
  readonly counters: readonly number[]
}

const codecs = new WeakMap<ModelInfo, ModelCodec>()

/** The model's codec (made on first use). @internal */
export function codecOf(model: ModelInfo): ModelCodec {
  let codec = codecs.get(model)
  if (!codec) {
    const keys = [...model.columns.keys()]
    const kinds = keys.map((key) =>
      model.counters.has(key) ? COUNTER : model.columns.get(key)!.kind === 'date' ? DATE : PLAIN,
    )
    codec = {
      keys,
      kinds,
      inherited: keys.map((key) => key in Object.prototype),
      counters: kinds.flatMap((kind, i) => (kind === COUNTER ? [i] : [])),
    }
    codecs.set(model, codec)
  }
  return codec
}

/**
 * A wire record as a local record (what `fromWire` gives): known columns only, ISO strings of
 * date columns as `Date`s. Counters are left as sent (see `decodeServerRecord`).
 */
export function decodeRecord(model: ModelInfo, wire: Record<string, JsonValue>): Row {
  const { keys, kinds, inherited } = codecOf(model)
  const out: Row = {}
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const value = wire[key]
    if (value === undefined || (inherited[i] && !Object.hasOwn(wire, key))) continue
    out[key] = kinds[i] === DATE && typeof value === 'string' ? new Date(value) : value
  }
  return out
}

/**
 * Marks the states `decodeColumns` made, whose rows are local already: `decodeServerRecord` takes
 * their rows as they are instead of copying them. A symbol on the state, not a set of rows: a
 * `WeakSet` of every row of a load cost the garbage collector about 1 µs a record, and a symbol
 * cannot come from the wire (JSON has none).
 */
const LOCAL_ROW = Symbol('tidesync.localRow')

/** A server state whose row `decodeColumns` made local already. */
type DecodedState = RecordWithMeta & { readonly [LOCAL_ROW]?: true }

/**
 * The records of a columnar page as local rows, with their metadata: the mapping from the page's
 * columns to the model's is worked out once per page, then each record is one loop over its
 * values (known columns only, dates as `Date`s, counters as numbers). Records that share clocks
 * share one clock map object. The states are marked local (see `decodeServerRecord`).
 */
export function decodeColumns(model: ModelInfo, columnar: ColumnarRecords): RecordWithMeta[] {
  const { kinds: modelKinds, keys: modelKeys } = codecOf(model)
  const positions: number[] = []
  const keys: string[] = []
  const kinds: number[] = []
  columnar.columns.forEach((column, position) => {
    const i = modelKeys.indexOf(column)
    if (i < 0) return
    positions.push(position)
    keys.push(column)
    kinds.push(modelKinds[i]!)
  })
  const { rows, meta, clocks } = columnar
  const out: RecordWithMeta[] = new Array(rows.length)
  for (let r = 0; r < rows.length; r++) {
    const values = rows[r]!
    const row: Row = {}
    for (let j = 0; j < keys.length; j++) {
      const value = values[positions[j]!]
      const kind = kinds[j]
      row[keys[j]!] =
        kind === DATE && typeof value === 'string'
          ? new Date(value)
          : kind === COUNTER
            ? Number(value ?? 0)
            : value
    }
    const [created_at, updated_at, deleted_at, rev, clock] = meta[r]!
    const state: DecodedState = {
      record: row as WireRecord,
      meta: { created_at, updated_at, deleted_at, rev, clocks: clocks[clock] ?? {} },
      [LOCAL_ROW]: true,
    }
    out[r] = state
  }
  return out
}

/**
 * The local row of a server state for a record the client holds nothing of: the decoded record
 * with counters as numbers (`null` counts as 0), exactly what merging that state into nothing
 * gives (`mergeServerState`), without the merge.
 */
export function decodeServerRecord(model: ModelInfo, state: RecordWithMeta): Row {
  const wire = state.record
  if ((state as DecodedState)[LOCAL_ROW]) return wire
  const out = decodeRecord(model, wire)
  const { keys, counters } = codecOf(model)
  for (const i of counters) {
    const key = keys[i]!
    if (Object.hasOwn(out, key)) out[key] = Number(out[key] ?? 0)
  }
  out.uid = wire.uid
  return out
}
