import type { JsonValue } from '@tidesync/protocol'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { TidesyncValidationError } from '../errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ISO_DATE_TIME =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const TIME = /^\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/
const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const BIGINT = /^[+-]?\d{1,19}$/

const INT_RANGES: Record<string, [number, number]> = {
  PgSmallInt: [-32768, 32767],
  PgSmallSerial: [-32768, 32767],
  PgInteger: [-2147483648, 2147483647],
  PgSerial: [-2147483648, 2147483647],
  PgBigInt53: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  PgBigSerial53: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
}
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

function typeError(path: string, expected: string, value: unknown): TidesyncValidationError {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
  return new TidesyncValidationError('INVALID_TYPE', `expected ${expected}, got ${got}`, path)
}

/** The number in `text` at `start`, `length` decimal digits, or -1. */
function digitsAt(text: string, start: number, length: number): number {
  let n = 0
  for (let i = start; i < start + length; i++) {
    const digit = text.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return -1
    n = n * 10 + digit
  }
  return n
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * The date of a canonical ISO string (`toISOString()` form, `YYYY-MM-DDTHH:mm:ss.sssZ`, as the
 * server sends and clients echo back), or undefined for anything else, valid or not (use
 * `parseDate` for those). Read by character codes: a full reconcile parses 200,000 of them.
 */
export function canonicalDate(value: unknown): Date | undefined {
  if (typeof value !== 'string' || value.length !== 24) return undefined
  if (
    value[4] !== '-' ||
    value[7] !== '-' ||
    value[10] !== 'T' ||
    value[13] !== ':' ||
    value[16] !== ':' ||
    value[19] !== '.' ||
    value[23] !== 'Z'
  ) {
    return undefined
  }
  const year = digitsAt(value, 0, 4)
  const month = digitsAt(value, 5, 2)
  const day = digitsAt(value, 8, 2)
  const hour = digitsAt(value, 11, 2)
  const minute = digitsAt(value, 14, 2)
  const second = digitsAt(value, 17, 2)
  const ms = digitsAt(value, 20, 3)
  if (year < 100 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return undefined
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0) return undefined
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > DAYS_IN_MONTH[month - 1]! || (month === 2 && day === 29 && !leap)) return undefined
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms))
}

/** A valid date from an ISO-8601 string (or a Date, for in-process callers), else INVALID_DATE. */
export function parseDate(value: unknown, path: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TidesyncValidationError('INVALID_DATE', 'invalid date', path)
    return value
  }
  if (typeof value !== 'string') throw typeError(path, 'an ISO-8601 date string', value)
  const ms = ISO_DATE_TIME.test(value) ? Date.parse(value) : Number.NaN
  if (!Number.isFinite(ms))
    throw new TidesyncValidationError(
      'INVALID_DATE',
      `invalid date ${JSON.stringify(value.slice(0, 40))}`,
      path,
    )
  // Date.parse rolls 2024-02-30 over to March: refuse dates whose fields do not survive.
  const day = value.slice(0, 10)
  const check = new Date(`${day}T00:00:00Z`)
  if (Number.isNaN(check.getTime()) || check.toISOString().slice(0, 10) !== day) {
    throw new TidesyncValidationError(
      'INVALID_DATE',
      `invalid date ${JSON.stringify(value.slice(0, 40))}`,
      path,
    )
  }
  return new Date(ms)
}

function parseString(column: PgColumn, value: unknown, path: string): string {
  if (typeof value !== 'string') throw typeError(path, 'a string', value)
  const enumValues = (column as { enumValues?: readonly string[] }).enumValues
  if (enumValues && enumValues.length > 0 && !enumValues.includes(value)) {
    throw new TidesyncValidationError('INVALID_TYPE', `expected one of ${enumValues.join(', ')}`, path)
  }
  const length = (column as { length?: number }).length
  if (typeof length === 'number' && value.length > length) {
    throw new TidesyncValidationError('INVALID_TYPE', `longer than ${length} characters`, path)
  }
  if (value.includes('\u0000'))
    throw new TidesyncValidationError('INVALID_TYPE', 'NUL characters are not allowed', path)
  return value
}

function checkJson(value: unknown, path: string, depth = 0): void {
  if (depth > 64) throw new TidesyncValidationError('INVALID_TYPE', 'JSON nested too deep', path)
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw typeError(path, 'a finite number', value)
    return
  }
  if (Array.isArray(value)) {
    for (const item of value) checkJson(item, path, depth + 1)
    return
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) checkJson(item, path, depth + 1)
    return
  }
  throw typeError(path, 'JSON', value)
}

/**
 * Checks a wire value against a drizzle column and returns what drizzle takes for it
 * (a Date for timestamp columns, a BigInt for bigint columns...). `null` is left to the caller.
 */
export function parseColumnValue(column: PgColumn, value: unknown, path: string): unknown {
  if (value === null) return null
  const type = column.columnType
  switch (type) {
    case 'PgUUID':
      if (typeof value !== 'string' || !UUID.test(value)) throw typeError(path, 'a UUID', value)
      return value.toLowerCase()
    case 'PgTimestamp':
    case 'PgDate':
      return parseDate(value, path)
    case 'PgTimestampString':
      return parseDate(value, path) && (value as string)
    case 'PgDateString':
      if (typeof value !== 'string' || !DATE_ONLY.test(value))
        throw typeError(path, 'a YYYY-MM-DD date', value)
      parseDate(value, path)
      return value
    case 'PgTime':
      if (typeof value !== 'string' || !TIME.test(value)) throw typeError(path, 'a time', value)
      return value
    case 'PgBigInt64':
    case 'PgBigSerial64': {
      let big: bigint
      if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value)
      else if (typeof value === 'string' && BIGINT.test(value)) big = BigInt(value)
      else if (typeof value === 'bigint') big = value
      else throw typeError(path, 'a 64-bit integer (number or string)', value)
      if (big < INT64_MIN || big > INT64_MAX) throw typeError(path, 'a 64-bit integer', value)
      return big
    }
    case 'PgNumeric':
      if (typeof value === 'number' && Number.isFinite(value)) return String(value)
      if (typeof value === 'string' && NUMERIC.test(value)) return value
      throw typeError(path, 'a decimal number', value)
    case 'PgNumericNumber':
    case 'PgReal':
    case 'PgDoublePrecision':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw typeError(path, 'a finite number', value)
      return value
    case 'PgJson':
    case 'PgJsonb':
      checkJson(value, path)
      return value
    case 'PgArray': {
      if (!Array.isArray(value)) throw typeError(path, 'an array', value)
      const base = (column as unknown as { baseColumn: PgColumn }).baseColumn
      return value.map((item, i) => (item === null ? null : parseColumnValue(base, item, `${path}[${i}]`)))
    }
  }
  const range = INT_RANGES[type]
  if (range) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw typeError(path, `an integer in [${range[0]}, ${range[1]}]`, value)
    }
    return value
  }
  switch (column.dataType) {
    case 'string':
      return parseString(column, value, path)
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw typeError(path, 'a finite number', value)
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(path, 'a boolean', value)
      return value
    case 'date':
      return parseDate(value, path)
    case 'bigint':
      return parseColumnValue({ columnType: 'PgBigInt64' } as PgColumn, value, path)
    default:
      checkJson(value, path)
      return value
  }
}

/** A column's value as JSON: dates as ISO strings, 64-bit integers as strings. */
export function toWireValue(value: unknown): JsonValue {
  if (value === null || value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(toWireValue)
  return value as JsonValue
}
