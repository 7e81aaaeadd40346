import { canonicalJson } from './canonical.js'
import type { Comparison } from './types.js'

/** A value in a form JavaScript compares (`===`, `<`) the way PostgreSQL does. */
export type Comparable = string | number | bigint | boolean

const TIMESTAMP_TYPES = new Set(['PgTimestamp', 'PgTimestampString', 'PgDate'])
const BIGINT_TYPES = new Set(['PgBigInt64', 'PgBigSerial64'])
const JSON_TYPES = new Set(['PgJson', 'PgJsonb', 'PgArray'])
const INTEGER_TEXT = /^[+-]?\d+$/

/**
 * How values of a drizzle column compare, from the column's `columnType` and `dataType` (both
 * sides describe their models with drizzle tables; this reads only the two names, so the
 * protocol does not depend on drizzle).
 */
export function comparisonOf(column: { readonly columnType: string; readonly dataType: string }): Comparison {
  const type = column.columnType
  if (TIMESTAMP_TYPES.has(type) || column.dataType === 'date') return 'timestamp'
  if (BIGINT_TYPES.has(type)) return 'bigint'
  if (type === 'PgNumeric') return 'numeric'
  if (type === 'PgUUID') return 'uuid'
  if (JSON_TYPES.has(type)) return 'json'
  return 'plain'
}

function toBigInt(value: unknown): bigint | number {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : value
  if (typeof value === 'string' && INTEGER_TEXT.test(value)) return BigInt(value)
  return Number.NaN // matches nothing, as a malformed value should
}

/**
 * A value (wire JSON, or a local/drizzle value: `Date`, `bigint`) in comparable form, or null
 * for SQL NULL (`null`, `undefined`).
 */
export function comparable(comparison: Comparison, value: unknown): Comparable | null {
  if (value === null || value === undefined) return null
  if (value instanceof Date) return value.getTime()
  switch (comparison) {
    case 'timestamp':
      return typeof value === 'string' ? Date.parse(value) : Number(value)
    case 'bigint':
      return toBigInt(value)
    case 'numeric':
      return Number(value)
    case 'uuid':
      return String(value).toLowerCase()
  }
  if (typeof value === 'object') return canonicalJson(value)
  return value as Comparable
}
