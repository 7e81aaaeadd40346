import { type Comparable, comparable } from './comparison.js'
import type { Condition, RangeOp } from './types.js'

/** A test of one record (wire JSON, or local values such as `Date`s), keyed by column. */
export type RecordMatcher = (record: Readonly<Record<string, unknown>>) => boolean

const RANGE_TEST: Record<RangeOp, (value: Comparable, bound: Comparable) => boolean> = {
  gte: (value, bound) => value >= bound,
  gt: (value, bound) => value > bound,
  lte: (value, bound) => value <= bound,
  lt: (value, bound) => value < bound,
}

function conditionMatcher(condition: Condition<unknown>): RecordMatcher {
  const { key, comparison } = condition
  const read = (record: Readonly<Record<string, unknown>>) => comparable(comparison, record[key])
  const of = (value: unknown) => comparable(comparison, value)
  switch (condition.kind) {
    case 'null':
      return (record) => read(record) === null
    case 'eq': {
      const expected = of(condition.value)
      return (record) => {
        const value = read(record)
        return value !== null && value === expected
      }
    }
    case 'in': {
      const values = condition.values.map(of)
      return (record) => {
        const value = read(record)
        return value !== null && values.some((item) => item === value)
      }
    }
    case 'range': {
      const bounds = condition.bounds.map(({ op, value }) => ({ test: RANGE_TEST[op], bound: of(value) }))
      return (record) => {
        const value = read(record)
        if (value === null) return false
        return bounds.every(({ test, bound }) => bound !== null && test(value, bound))
      }
    }
  }
}

/**
 * The test of parsed conditions (all ANDed) on records, with the semantics of the SQL a server
 * runs for them: NULL matches only `null` conditions, values compare per column (see
 * `Comparison`). The conditions' values are put in comparable form once, here.
 */
export function whereMatcher(conditions: readonly Condition<unknown>[]): RecordMatcher {
  const tests = conditions.map(conditionMatcher)
  if (tests.length === 0) return () => true
  if (tests.length === 1) return tests[0]!
  return (record) => tests.every((test) => test(record))
}

/** Whether one record matches parsed conditions (see `whereMatcher` to test many). */
export function matchesConditions(
  conditions: readonly Condition<unknown>[],
  record: Readonly<Record<string, unknown>>,
): boolean {
  return whereMatcher(conditions)(record)
}
