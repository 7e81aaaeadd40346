import type { JsonValue, WireRecord } from '@tidesync/protocol'
import type { ColumnInfo, ModelInfo } from './model.js'
import { decodeRecord } from './record-codec.js'

/**
 * Converts between local records (drizzle's shape: property keys, `Date` objects) and wire
 * records (JSON under the same property keys: timestamps as ISO-8601 strings).
 */

/** A local value as JSON: a `Date` becomes its ISO-8601 string, anything else stays. */
export function toJsonValue(value: unknown): JsonValue {
  if (value instanceof Date) return value.toISOString()
  return value as JsonValue
}

/** A wire value as the local value of `column` (an ISO string of a date column becomes a `Date`). */
export function fromWireValue(column: ColumnInfo, value: JsonValue | undefined): unknown {
  if (value === undefined) return undefined
  if (column.kind === 'date' && typeof value === 'string') return new Date(value)
  return value
}

/** A local record (or patch) as wire JSON; fields left out stay out, unknown fields are dropped. */
export function toWire(model: ModelInfo, record: Record<string, unknown>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {}
  for (const [key, value] of Object.entries(record)) {
    if (!model.columns.has(key) || value === undefined) continue
    out[key] = toJsonValue(value)
  }
  return out
}

/** A wire record as a local record. Columns the client does not know are dropped. */
export function fromWire(
  model: ModelInfo,
  wire: WireRecord | Record<string, JsonValue>,
): Record<string, unknown> {
  return decodeRecord(model, wire)
}

/** Local equality of two field values (dates by time, JSON by structure). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  return JSON.stringify(a) === JSON.stringify(b)
}
