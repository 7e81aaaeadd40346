import { TidesyncValidationError } from '../errors.js'
import type { ColumnInfo, ModelInfo } from './model.js'

function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false
  if (value === null) return true
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(value)
    case 'object': {
      if (Array.isArray(value)) return value.every((item) => isPlainJson(item, depth + 1))
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      return Object.entries(value as Record<string, unknown>).every(
        ([key, item]) => key !== '__proto__' && isPlainJson(item, depth + 1),
      )
    }
    default:
      return false
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : 'a Date'
  if (Array.isArray(value)) return 'an array'
  return `a ${typeof value}`
}

function typeError(
  model: ModelInfo,
  column: ColumnInfo,
  expected: string,
  value: unknown,
): TidesyncValidationError {
  return new TidesyncValidationError(
    'CLIENT_INVALID_TYPE',
    `${model.key}.${column.key} expects ${expected}, got ${describe(value)}`,
    model.key,
    column.key,
  )
}

/** Throws a `TidesyncValidationError` unless `value` fits the column. */
export function checkValue(model: ModelInfo, column: ColumnInfo, value: unknown): void {
  if (value === null) {
    if (!column.nullable) throw typeError(model, column, 'a value (the column is NOT NULL)', value)
    return
  }
  switch (column.kind) {
    case 'string':
      if (typeof value !== 'string') throw typeError(model, column, 'a string', value)
      if (column.enumValues && !column.enumValues.includes(value)) {
        throw typeError(model, column, `one of ${column.enumValues.map((v) => `'${v}'`).join(', ')}`, value)
      }
      if (column.maxLength !== undefined && value.length > column.maxLength) {
        throw typeError(model, column, `at most ${column.maxLength} characters`, value)
      }
      return
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        throw typeError(model, column, 'an integer', value)
      return
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw typeError(model, column, 'a finite number', value)
      return
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(model, column, 'a boolean', value)
      return
    case 'date':
      if (!(value instanceof Date) || Number.isNaN(value.getTime()))
        throw typeError(model, column, 'a valid Date', value)
      return
    case 'array':
      if (!Array.isArray(value) || !isPlainJson(value))
        throw typeError(model, column, 'an array of JSON values', value)
      return
    default:
      if (!isPlainJson(value)) throw typeError(model, column, 'JSON data', value)
  }
}

function columnFor(model: ModelInfo, key: string): ColumnInfo {
  const column = model.columns.get(key)
  if (!column) {
    throw new TidesyncValidationError(
      'CLIENT_UNKNOWN_FIELD',
      `${model.key} has no field '${key}' (fields: ${[...model.columns.keys()].join(', ')})`,
      model.key,
      key,
    )
  }
  return column
}

/**
 * Checks the data of a create and completes it into a full record: defaults for the columns
 * left out (drizzle `.default()`, `$defaultFn`, `defaultNow()`), null for nullable ones.
 * Columns with a database-only default (e.g. `serial`) stay out: the server fills them in.
 */
export function prepareCreate(
  model: ModelInfo,
  data: Record<string, unknown>,
  uid: string,
  now: number,
): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new TidesyncValidationError(
      'CLIENT_INVALID_TYPE',
      `${model.key}.create expects an object`,
      model.key,
    )
  }
  for (const key of Object.keys(data)) columnFor(model, key)
  const record: Record<string, unknown> = { uid }
  for (const column of model.columns.values()) {
    if (column.key === 'uid') continue
    let value = data[column.key]
    if (value === undefined) {
      if (column.makeDefault) value = column.makeDefault(now)
      else if (column.hasDefault) continue
      else if (column.nullable) value = null
      else {
        throw new TidesyncValidationError(
          'CLIENT_MISSING_FIELD',
          `${model.key}.create needs '${column.key}' (NOT NULL, no default)`,
          model.key,
          column.key,
        )
      }
    }
    checkValue(model, column, value)
    record[column.key] = value
  }
  if (data.uid !== undefined) checkValue(model, model.columns.get('uid')!, data.uid)
  return record
}

/**
 * Checks a patch: known fields only, not `uid`, not a counter, values of the column's type.
 * Fields given as `undefined` are left out. Returns the cleaned patch.
 */
export function preparePatch(model: ModelInfo, patch: Record<string, unknown>): Record<string, unknown> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new TidesyncValidationError(
      'CLIENT_INVALID_TYPE',
      `${model.key}.update expects an object`,
      model.key,
    )
  }
  const clean: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(patch)) {
    const column = columnFor(model, key)
    if (key === 'uid') {
      throw new TidesyncValidationError(
        'CLIENT_UNKNOWN_FIELD',
        `${model.key}.uid cannot be changed`,
        model.key,
        key,
      )
    }
    if (column.counter) {
      throw new TidesyncValidationError(
        'CLIENT_NOT_A_COUNTER',
        `${model.key}.${key} is a counter: change it with increment(uid, '${key}', n)`,
        model.key,
        key,
      )
    }
    if (value === undefined) continue
    checkValue(model, column, value)
    clean[key] = value
  }
  return clean
}

/** Checks an increment: a counter column and a finite, non-zero-safe number. */
export function checkIncrement(model: ModelInfo, key: string, n: unknown): ColumnInfo {
  const column = columnFor(model, key)
  if (!column.counter) {
    throw new TidesyncValidationError(
      'CLIENT_NOT_A_COUNTER',
      `${model.key}.${key} is not a counter (declare it in models.${model.key}.counters)`,
      model.key,
      key,
    )
  }
  const integer = column.kind === 'integer'
  if (typeof n !== 'number' || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw typeError(model, column, integer ? 'an integer increment' : 'a finite increment', n)
  }
  return column
}
