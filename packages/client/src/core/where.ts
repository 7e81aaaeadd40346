import {
  canonicalJson,
  type JsonValue,
  parseWhere,
  type RecordMatcher,
  type Where,
  type WhereSchema,
  whereMatcher,
} from '@tidesync/protocol'
import { TidesyncValidationError } from './errors.js'
import { toJsonValue } from './schema/codec.js'
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

/**
 * The protocol's where language over a model's columns, as the client reads it: values are
 * already wire values (from `normalizeWhere`), and conditions on json/array columns are kept for
 * local queries (the server refuses them).
 */
function schemaOf(model: ModelInfo): WhereSchema<ColumnInfo> {
  return {
    model: model.key,
    column: (key) => model.columns.get(key),
    comparison: (column) => column.comparison,
    value: (_column, value) => value,
    error: (code, message, path, key) =>
      new TidesyncValidationError(
        code === 'UNKNOWN_COLUMN' ? 'CLIENT_UNKNOWN_FIELD' : 'CLIENT_INVALID_TYPE',
        `${path}: ${message}`,
        model.key,
        key,
      ),
    jsonConditions: true,
  }
}

/**
 * The compiled test of each wire where, by identity: a where is parsed once, not per record
 * (wheres in wire form are never changed after `normalizeWhere` made them).
 */
const matchers = new WeakMap<Where, { model: ModelInfo; test: RecordMatcher }>()

function compile(model: ModelInfo, where: Where): RecordMatcher {
  const conditions = parseWhere(where, schemaOf(model))
  const test = whereMatcher(conditions)
  matchers.set(where, { model, test })
  return test
}

/**
 * Checks a where against the model and turns it into wire form (dates as ISO strings). Throws
 * `TidesyncValidationError`: `CLIENT_UNKNOWN_FIELD` for a field the model lacks,
 * `CLIENT_INVALID_TYPE` for a condition the protocol's where language refuses (an empty or
 * unknown operator, `in` with another operator or with `null`, a bound without a value).
 */
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
    if (isIn(condition)) wire[key] = { in: condition.in.map(toJsonValue) }
    else if (isRange(condition)) {
      const range: Record<string, JsonValue> = {}
      for (const [bound, value] of Object.entries(condition))
        if (value !== undefined) range[bound] = toJsonValue(value)
      wire[key] = range
    } else wire[key] = toJsonValue(condition)
  }
  compile(model, wire)
  return { wire, key: canonicalJson(wire) }
}

/**
 * Whether a local record matches a wire-form where: the protocol's matching, the same
 * semantics as the server's SQL (timestamps by time, 64-bit integers and decimals as numbers,
 * uuids ignoring case, NULL only for `null`).
 */
export function matchesWhere(model: ModelInfo, where: Where, record: Record<string, unknown>): boolean {
  const compiled = matchers.get(where)
  const test = compiled && compiled.model === model ? compiled.test : compile(model, where)
  return test(record)
}
