import type { Json } from '@tidesync/ipc'
import { is, SQL } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { WriteBufferError } from '../errors.js'

/**
 * Values travel through IPC and into SQL as JSON ("driver JSON"): every value is turned into
 * what Postgres's input function for the column type reads from a JSON scalar (an ISO string
 * for a timestamp, a decimal string for a bigint, `\x..` hex for bytea) or, for json/jsonb and
 * arrays, into JSON itself. `jsonb_to_recordset` then types them by the column's SQL type.
 *
 * Why not drizzle's `mapToDriverValue`: it returns driver-specific forms (a JSON string for
 * jsonb, a `{1,2}` literal for arrays) that do not round-trip through JSON, and
 * `mapFromDriverValue` of a timestamp expects the driver's text format, not ISO.
 */
const INTEGER_TYPES = /^Pg(Integer|SmallInt|Serial|SmallSerial|BigInt53|BigSerial53)$/

export function isIntegerColumn(column: PgColumn): boolean {
  return INTEGER_TYPES.test(column.columnType)
}

/** Numeric columns accept `increment`: numbers, bigints and numeric/decimal. */
export function isNumericColumn(column: PgColumn): boolean {
  return (
    column.dataType === 'number' || column.dataType === 'bigint' || column.columnType.startsWith('PgNumeric')
  )
}

/** Encodes one value for `column`; throws WB_INVALID_VALUE when it does not fit. */
export function encodeValue(column: PgColumn, key: string, value: unknown): Json {
  if (value === null) {
    if (column.notNull) throw invalid(key, value, 'the column is NOT NULL')
    return null
  }
  switch (column.dataType) {
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw invalid(key, value, 'a finite number is expected')
      if (isIntegerColumn(column) && !Number.isInteger(value))
        throw invalid(key, value, 'an integer is expected')
      return value
    case 'bigint':
      if (typeof value === 'bigint') return value.toString()
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
      throw invalid(key, value, 'a bigint or a safe integer is expected')
    case 'string':
      if (column.columnType.startsWith('PgNumeric') && typeof value === 'number' && Number.isFinite(value)) {
        return String(value)
      }
      if (typeof value !== 'string') throw invalid(key, value, 'a string is expected')
      if (column.enumValues?.length && !column.enumValues.includes(value)) {
        throw invalid(key, value, `one of ${column.enumValues.join(', ')} is expected`)
      }
      return column.columnType === 'PgUUID' ? value.toLowerCase() : value
    case 'boolean':
      if (typeof value !== 'boolean') throw invalid(key, value, 'a boolean is expected')
      return value
    case 'date':
      if (!(value instanceof Date) || Number.isNaN(value.getTime()))
        throw invalid(key, value, 'a valid Date is expected')
      return value.toISOString()
    case 'json':
      return toJson(key, value)
    case 'array':
      if (!Array.isArray(value)) throw invalid(key, value, 'an array is expected')
      return value.map((item) => encodeScalar(key, item))
    case 'buffer':
      if (!(value instanceof Uint8Array)) throw invalid(key, value, 'a Buffer/Uint8Array is expected')
      return `\\x${Buffer.from(value).toString('hex')}`
    default:
      return encodeScalar(key, column.mapToDriverValue(value))
  }
}

/** Turns driver JSON back into what drizzle would return for `column`. */
export function decodeValue(column: PgColumn, value: Json): unknown {
  if (value === null) return null
  switch (column.dataType) {
    case 'number':
      return typeof value === 'number' ? value : Number(value)
    case 'bigint':
      return BigInt(value as string)
    case 'date':
      return new Date(value as string)
    case 'buffer':
      return Buffer.from((value as string).slice(2), 'hex')
    case 'string':
    case 'boolean':
    case 'json':
    case 'array':
      return value
    default:
      return column.mapFromDriverValue(value)
  }
}

/** Adds an integer delta to a value of a numeric column (number, bigint or decimal string). */
export function addDelta(base: unknown, delta: bigint): unknown {
  if (typeof base === 'bigint') return base + delta
  if (typeof base === 'string') return addDecimal(base, delta)
  if (typeof base === 'number') return base + Number(delta)
  return base
}

/** Exact `decimal + integer` on strings ("12.50" + 3 = "15.50"). */
export function addDecimal(decimal: string, delta: bigint): string {
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(decimal.trim())
  if (!match) return decimal
  const [, sign = '', whole = '', fraction = ''] = match
  const scale = fraction.length
  const unit = 10n ** BigInt(scale)
  let scaled = BigInt(`${whole || '0'}${fraction}`) * (sign === '-' ? -1n : 1n)
  scaled += delta * unit
  const negative = scaled < 0n
  const digits = (negative ? -scaled : scaled).toString().padStart(scale + 1, '0')
  const body = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`
  return negative ? `-${body}` : body
}

function encodeScalar(key: string, value: unknown): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(key, value, 'a finite number is expected')
    return value
  }
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(key, value, 'a valid Date is expected')
    return value.toISOString()
  }
  if (Array.isArray(value)) return value.map((item) => encodeScalar(key, item))
  if (is(value, SQL)) throw invalid(key, value, 'SQL expressions cannot be buffered')
  throw invalid(key, value, 'a JSON-serialisable value is expected')
}

function toJson(key: string, value: unknown): Json {
  // Fast path: plain JSON data is copied as it is (a copy: the caller may change the object
  // before the write reaches the IPC store). An SQL expression is no plain data.
  const copy = copyPlainJson(value, 0)
  if (copy !== NOT_PLAIN) return copy
  if (is(value, SQL)) throw invalid(key, value, 'SQL expressions cannot be buffered')
  // Anything else becomes what drizzle would send (JSON.stringify: toJSON(), undefined dropped).
  let text: string | undefined
  try {
    text = JSON.stringify(value, (_k, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('non-finite number')
      if (typeof v === 'bigint') throw new Error('bigint')
      return v
    })
  } catch (error) {
    throw invalid(key, value, `JSON data is expected (${(error as Error).message})`)
  }
  if (text === undefined) throw invalid(key, value, 'JSON data is expected')
  return JSON.parse(text) as Json
}

const NOT_PLAIN = Symbol('not plain JSON')

/**
 * A copy of null, booleans, strings, finite numbers, and plain arrays/objects of those (no
 * `undefined`, no holes); NOT_PLAIN for anything else.
 */
function copyPlainJson(value: unknown, depth: number): Json | typeof NOT_PLAIN {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : NOT_PLAIN
  if (typeof value !== 'object' || depth > 32) return NOT_PLAIN
  if (Array.isArray(value)) {
    const out: Json[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      const item = copyPlainJson(value[i], depth + 1)
      if (item === NOT_PLAIN) return NOT_PLAIN
      out[i] = item
    }
    return out
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN
  const out: Record<string, Json> = {}
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return NOT_PLAIN
    const item = copyPlainJson((value as Record<string, unknown>)[key], depth + 1)
    if (item === NOT_PLAIN) return NOT_PLAIN
    if (key === '__proto__') {
      Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true })
    } else out[key] = item
  }
  return out
}

function invalid(key: string, value: unknown, why: string): WriteBufferError {
  const shown = typeof value === 'bigint' ? `${value}n` : safeShow(value)
  return new WriteBufferError('WB_INVALID_VALUE', `Invalid value ${shown} for column "${key}": ${why}.`)
}

function safeShow(value: unknown): string {
  try {
    return String(JSON.stringify(value) ?? String(value)).slice(0, 80)
  } catch {
    return typeof value
  }
}
