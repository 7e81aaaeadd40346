import type { JsonValue, Where } from '@tidesync/server/protocol'
import { TidesyncValidationError } from './errors.js'
import { toWireValue, wireKey } from './schema/codec.js'
import type { ColumnInfo, ModelInfo } from './schema/model.js'

/** A where in wire form plus its canonical key (the same subset always has the same key). */
export interface NormalizedWhere {
  wire: Where
  key: string
}

const RANGE_KEYS = new Set(['gte', 'gt', 'lte', 'lt'])

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)
}

function isIn(value: unknown): value is { in: unknown[] } {
  return isObject(value) && Object.keys(value).length === 1 && Array.isArray(value.in)
}

function isRange(value: unknown): value is Partial<Record<'gte' | 'gt' | 'lte' | 'lt', unknown>> {
  if (!isObject(value)) return false
  const keys = Object.keys(value)
  return keys.length > 0 && keys.every((key) => RANGE_KEYS.has(key))
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (isObject(value)) {
    const keys = Object.keys(value).sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** Checks a where against the model and turns it into wire form (dates as ISO strings). */
export function normalizeWhere(
  model: ModelInfo,
  where: Record<string, unknown> | undefined | null,
): NormalizedWhere {
  const wire: Where = {}
  for (const [key, condition] of Object.entries(where ?? {})) {
    if (condition === undefined) continue
    const column = model.columns.get(key)
    if (!column) {
      throw new TidesyncValidationError(
        'CLIENT_UNKNOWN_FIELD',
        `${model.key} has no field '${key}' to filter on`,
        model.key,
        key,
      )
    }
    const convert = (value: unknown) => toWireValue(column, value)
    if (isIn(condition)) wire[wireKey(column)] = { in: condition.in.map(convert) }
    else if (isRange(condition)) {
      const range: Record<string, JsonValue> = {}
      for (const [bound, value] of Object.entries(condition))
        if (value !== undefined) range[bound] = convert(value)
      wire[wireKey(column)] = range
    } else wire[wireKey(column)] = convert(condition)
  }
  return { wire, key: canonical(wire) }
}

function comparable(column: ColumnInfo, value: unknown): unknown {
  if (value === null || value === undefined) return null
  if (column.kind === 'date') {
    if (value instanceof Date) return value.getTime()
    if (typeof value === 'string') return Date.parse(value)
  }
  if (typeof value === 'object') return canonical(value)
  return value
}

/** Whether a local record matches a wire-form where (the same semantics as the server's SQL). */
export function matchesWhere(model: ModelInfo, where: Where, record: Record<string, unknown>): boolean {
  for (const column of model.columns.values()) {
    const key = wireKey(column)
    if (!Object.hasOwn(where, key)) continue
    const condition = where[key]
    const value = comparable(column, record[column.key])
    if (condition === null) {
      if (value !== null) return false
    } else if (isIn(condition)) {
      if (value === null || !condition.in.some((item) => comparable(column, item) === value)) return false
    } else if (isRange(condition)) {
      if (value === null) return false
      const v = value as number | string
      for (const [bound, raw] of Object.entries(condition)) {
        const limit = comparable(column, raw) as number | string
        if (bound === 'gte' && !(v >= limit)) return false
        if (bound === 'gt' && !(v > limit)) return false
        if (bound === 'lte' && !(v <= limit)) return false
        if (bound === 'lt' && !(v < limit)) return false
      }
    } else if (value !== comparable(column, condition)) return false
  }
  return true
}
