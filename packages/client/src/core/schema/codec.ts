import type { JsonValue, WireRecord } from '@tidesync/protocol'
import type { ColumnInfo, ModelInfo } from './model.js'

/**
 * Converts between local records (drizzle's shape: property keys, `Date` objects) and wire
 * records (JSON: timestamps as ISO-8601 strings). The one place that knows the wire's naming.
 */

/** The key a column has on the wire. */
export function wireKey(column: ColumnInfo): string {
  return column.key
}

export function toWireValue(_column: ColumnInfo, value: unknown): JsonValue {
  if (value instanceof Date) return value.toISOString()
  return value as JsonValue
}

export function fromWireValue(column: ColumnInfo, value: JsonValue | undefined): unknown {
  if (value === undefined) return undefined
  if (column.kind === 'date' && typeof value === 'string') return new Date(value)
  return value
}

/** A local record (or patch) as wire JSON; fields left out stay out. */
export function toWire(model: ModelInfo, record: Record<string, unknown>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {}
  for (const [key, value] of Object.entries(record)) {
    const column = model.columns.get(key)
    if (!column || value === undefined) continue
    out[wireKey(column)] = toWireValue(column, value)
  }
  return out
}

/** A wire record as a local record. Columns the client does not know are dropped. */
export function fromWire(
  model: ModelInfo,
  wire: WireRecord | Record<string, JsonValue>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const column of model.columns.values()) {
    const key = wireKey(column)
    if (!Object.hasOwn(wire, key)) continue
    out[column.key] = fromWireValue(column, wire[key])
  }
  return out
}

/** Local equality of two field values (dates by time, JSON by structure). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime()
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  return JSON.stringify(a) === JSON.stringify(b)
}
