import type { ErrorCode } from '../errors.js'
import type { Comparison, Condition, RangeOp } from './types.js'
import { MAX_IN_VALUES, RANGE_OPS } from './types.js'

/** What `parseWhere` needs to know about a model, from the side that parses. */
export interface WhereSchema<C> {
  /** The model's name, for messages. */
  readonly model: string
  /** The column a where key names, or undefined when the model has none (`UNKNOWN_COLUMN`). */
  column(key: string): C | undefined
  /** How the column's values compare (see `comparisonOf`). */
  comparison(column: C): Comparison
  /**
   * Checks one value (never null) for the column and returns what this side keeps in the
   * condition; throws this side's error when the value does not fit.
   */
  value(column: C, value: unknown, path: string): unknown
  /**
   * The error to throw for a where that breaks the language's rules; `key` is the where key it
   * is about (none when the where itself is not an object).
   */
  error(code: ErrorCode, message: string, path: string, key?: string): Error
  /**
   * Accept conditions on json and array columns (`json` comparison), compared by their
   * canonical JSON. The wire refuses them (`INVALID_TYPE`); a client's local-only queries may
   * use them. On such a column an object that is not `{ in: [...] }` or a range is a value to
   * compare with. @default false
   */
  readonly jsonConditions?: boolean
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

/** On a json column, whether an object is an operator object (else it is a value). */
function isOperatorObject(value: Record<string, unknown>): boolean {
  const keys = Object.keys(value)
  if (keys.length === 1 && keys[0] === 'in') return Array.isArray(value.in)
  return keys.length > 0 && keys.every((key) => (RANGE_OPS as readonly string[]).includes(key))
}

/**
 * Checks a `where` against a model and reads it into conditions (PROTOCOL.md section 3): known
 * columns only (`UNKNOWN_COLUMN`), no conditions on json/jsonb/array columns (`INVALID_TYPE`),
 * operators `in` (alone, an array of at most `MAX_IN_VALUES` values, no null) and
 * `gte/gt/lte/lt` (every bound kept, none null); `schema.value` checks each value. `undefined`
 * members are left out; `undefined` or `null` is no condition.
 */
export function parseWhere<C>(where: unknown, schema: WhereSchema<C>, path = 'where'): Condition<C>[] {
  if (where === undefined || where === null) return []
  if (!isPlainObject(where)) throw schema.error('BAD_REQUEST', 'must be an object', path)
  const conditions: Condition<C>[] = []
  for (const [key, raw] of Object.entries(where)) {
    const at = `${path}.${key}`
    if (raw === undefined) continue
    const column = schema.column(key)
    if (column === undefined)
      throw schema.error('UNKNOWN_COLUMN', `model ${schema.model} has no column ${key}`, at, key)
    const comparison = schema.comparison(column)
    if (comparison === 'json' && !schema.jsonConditions) {
      throw schema.error('INVALID_TYPE', 'json and array columns cannot be filtered', at, key)
    }
    if (raw === null) {
      conditions.push({ kind: 'null', key, column, comparison })
      continue
    }
    if (!isPlainObject(raw) || (comparison === 'json' && !isOperatorObject(raw))) {
      conditions.push({ kind: 'eq', key, column, comparison, value: schema.value(column, raw, at) })
      continue
    }
    const ops = Object.keys(raw)
    if (ops.length === 0) throw schema.error('BAD_REQUEST', 'an empty condition', at, key)
    if ('in' in raw) {
      if (ops.length !== 1) throw schema.error('BAD_REQUEST', '`in` cannot be combined', at, key)
      const list = raw.in
      if (!Array.isArray(list)) throw schema.error('BAD_REQUEST', '`in` takes an array', `${at}.in`, key)
      if (list.length > MAX_IN_VALUES) {
        throw schema.error(
          'PAYLOAD_TOO_LARGE',
          `\`in\` takes at most ${MAX_IN_VALUES} values`,
          `${at}.in`,
          key,
        )
      }
      const values = list.map((item, i) => {
        if (item === null) throw schema.error('INVALID_TYPE', '`in` cannot hold null', `${at}.in[${i}]`, key)
        return schema.value(column, item, `${at}.in[${i}]`)
      })
      conditions.push({ kind: 'in', key, column, comparison, values })
      continue
    }
    const bounds: Array<{ op: RangeOp; value: unknown }> = []
    for (const op of ops) {
      if (!RANGE_OPS.includes(op as RangeOp)) {
        throw schema.error(
          'BAD_REQUEST',
          `unknown operator ${JSON.stringify(op)} (in, gte, gt, lte, lt)`,
          at,
          key,
        )
      }
      const value = raw[op]
      if (value === null || value === undefined) {
        throw schema.error('INVALID_TYPE', `the bound ${op} needs a value`, `${at}.${op}`, key)
      }
      bounds.push({ op: op as RangeOp, value: schema.value(column, value, `${at}.${op}`) })
    }
    conditions.push({ kind: 'range', key, column, comparison, bounds })
  }
  return conditions
}
