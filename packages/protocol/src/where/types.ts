import type { JsonValue } from '../records.js'

/**
 * A filter on a model's columns, ANDed together. A value means equality (`null` means IS NULL),
 * `{ in: [...] }` means membership, `{ gte, gt, lte, lt }` are ranges (every bound given is
 * kept). Unknown columns are refused.
 */
export type WhereValue =
  | JsonValue
  | { in: JsonValue[] }
  | { gte?: JsonValue; gt?: JsonValue; lte?: JsonValue; lt?: JsonValue }
export type Where = Record<string, WhereValue>

export type RangeOp = 'gte' | 'gt' | 'lte' | 'lt'

export const RANGE_OPS: readonly RangeOp[] = Object.freeze(['gte', 'gt', 'lte', 'lt'])

/** The most values one `in` may hold. */
export const MAX_IN_VALUES = 1000

/**
 * How a column's values compare, as PostgreSQL compares them:
 * - `timestamp`: by time (ISO strings, `Date`s and ms all compare as ms)
 * - `bigint`: as 64-bit integers (they travel as digit strings)
 * - `numeric`: as numbers (exact decimals travel as strings)
 * - `uuid`: ignoring case
 * - `json`: json, jsonb and array columns; the wire refuses conditions on them
 * - `plain`: as the JSON value itself (strings, numbers, booleans)
 */
export type Comparison = 'timestamp' | 'bigint' | 'numeric' | 'uuid' | 'json' | 'plain'

/**
 * One checked condition of a `where`. `column` is the column as the side that parsed it knows
 * it; `value`/`values`/`bounds` hold what that side's value check returned (on the server, the
 * values drizzle takes). @internal
 */
export type Condition<C> =
  | { kind: 'eq'; key: string; column: C; comparison: Comparison; value: unknown }
  | { kind: 'null'; key: string; column: C; comparison: Comparison }
  | { kind: 'in'; key: string; column: C; comparison: Comparison; values: unknown[] }
  | {
      kind: 'range'
      key: string
      column: C
      comparison: Comparison
      bounds: Array<{ op: RangeOp; value: unknown }>
    }
