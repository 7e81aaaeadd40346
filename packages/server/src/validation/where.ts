import type { PgColumn } from 'drizzle-orm/pg-core'
import { TidesyncValidationError } from '../errors.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { parseColumnValue } from './values.js'

export type RangeOp = 'gte' | 'gt' | 'lte' | 'lt'

/** One checked condition of a `where`, with values already converted for drizzle. @internal */
export type Condition =
  | { kind: 'eq'; key: string; column: PgColumn; value: unknown }
  | { kind: 'null'; key: string; column: PgColumn }
  | { kind: 'in'; key: string; column: PgColumn; values: unknown[] }
  | { kind: 'range'; key: string; column: PgColumn; bounds: Array<{ op: RangeOp; value: unknown }> }

const RANGE_OPS: readonly RangeOp[] = ['gte', 'gt', 'lte', 'lt']
const MAX_IN = 1000
const UNFILTERABLE = new Set(['PgJson', 'PgJsonb', 'PgArray'])

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/**
 * Checks a `where` against a model: known columns only (`UNKNOWN_COLUMN`), values of the column's
 * type (`INVALID_TYPE`/`INVALID_DATE`), operators `in` and `gte/gt/lte/lt` (every bound kept).
 */
export function parseWhere(model: ResolvedModel<unknown>, where: unknown, path = 'where'): Condition[] {
  if (where === undefined || where === null) return []
  if (!isPlainObject(where)) throw new TidesyncValidationError('BAD_REQUEST', 'must be an object', path)
  const conditions: Condition[] = []
  for (const [key, raw] of Object.entries(where)) {
    const at = `${path}.${key}`
    if (raw === undefined) continue
    const column = model.columns.get(key)
    if (!column)
      throw new TidesyncValidationError('UNKNOWN_COLUMN', `model ${model.name} has no column ${key}`, at)
    if (UNFILTERABLE.has(column.columnType)) {
      throw new TidesyncValidationError('INVALID_TYPE', `${column.columnType} columns cannot be filtered`, at)
    }
    if (raw === null) {
      conditions.push({ kind: 'null', key, column })
      continue
    }
    if (!isPlainObject(raw)) {
      conditions.push({ kind: 'eq', key, column, value: parseColumnValue(column, raw, at) })
      continue
    }
    const ops = Object.keys(raw)
    if (ops.length === 0) throw new TidesyncValidationError('BAD_REQUEST', 'an empty condition', at)
    if ('in' in raw) {
      if (ops.length !== 1) throw new TidesyncValidationError('BAD_REQUEST', '`in` cannot be combined', at)
      const list = raw.in
      if (!Array.isArray(list))
        throw new TidesyncValidationError('BAD_REQUEST', '`in` takes an array', `${at}.in`)
      if (list.length > MAX_IN)
        throw new TidesyncValidationError(
          'PAYLOAD_TOO_LARGE',
          `\`in\` takes at most ${MAX_IN} values`,
          `${at}.in`,
        )
      const values = list.map((item, i) => {
        if (item === null)
          throw new TidesyncValidationError('INVALID_TYPE', '`in` cannot hold null', `${at}.in[${i}]`)
        return parseColumnValue(column, item, `${at}.in[${i}]`)
      })
      conditions.push({ kind: 'in', key, column, values })
      continue
    }
    const bounds: Array<{ op: RangeOp; value: unknown }> = []
    for (const op of ops) {
      if (!RANGE_OPS.includes(op as RangeOp)) {
        throw new TidesyncValidationError(
          'BAD_REQUEST',
          `unknown operator ${JSON.stringify(op)} (in, gte, gt, lte, lt)`,
          at,
        )
      }
      const value = raw[op]
      if (value === null || value === undefined) {
        throw new TidesyncValidationError('INVALID_TYPE', `the bound ${op} needs a value`, `${at}.${op}`)
      }
      bounds.push({ op: op as RangeOp, value: parseColumnValue(column, value, `${at}.${op}`) })
    }
    conditions.push({ kind: 'range', key, column, bounds })
  }
  return conditions
}

/** A stable text form of a where (sorted keys), for lock keys. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`
  }
  return JSON.stringify(value ?? null)
}
