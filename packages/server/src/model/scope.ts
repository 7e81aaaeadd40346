import { canonicalJson, type RangeOp, type Where, type WireRecord, whereMatcher } from '@tidesync/protocol'
import { and, eq, gt, gte, inArray, isNull, lt, lte, type SQL, sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { TidesyncError } from '../errors.js'
import type { ResolvedModel } from './resolve-models.js'
import { type Condition, parseWhere } from './where.js'

/**
 * What one caller may see of one model through one `where`: the client's conditions ANDed with
 * the model's scope for this user, as SQL (for reads and syncs) and as a JavaScript predicate on
 * wire records (for live pushes: the protocol's `whereMatcher`, the same semantics as the SQL).
 */
export interface Filter {
  /** The SQL condition, or undefined when everything matches. */
  sql: SQL | undefined
  /** Same test on a wire record (used on live changes). */
  matches(record: WireRecord): boolean
  /** A stable key of model + where + scope (lock keys). */
  key: string
  /** The scope part alone (writes must stay inside it). */
  scopeSql: SQL | undefined
  matchesScope(record: WireRecord): boolean
}

const RANGE_SQL: Record<RangeOp, (column: PgColumn, value: unknown) => SQL> = {
  gte: (column, value) => gte(column, value),
  gt: (column, value) => gt(column, value),
  lte: (column, value) => lte(column, value),
  lt: (column, value) => lt(column, value),
}

function conditionSql(condition: Condition): SQL {
  const { column } = condition
  switch (condition.kind) {
    case 'eq':
      return eq(column, condition.value)
    case 'null':
      return isNull(column)
    case 'in':
      return condition.values.length === 0 ? sql`false` : inArray(column, condition.values)
    case 'range': {
      const parts = condition.bounds.map(({ op, value }) => RANGE_SQL[op](column, value))
      return and(...parts)!
    }
  }
}

export function conditionsSql(conditions: Condition[]): SQL | undefined {
  if (conditions.length === 0) return undefined
  return and(...conditions.map(conditionSql))
}

/** The model's scope for this caller, checked like a client `where`. */
export function scopeConditions<TCtx>(
  model: ResolvedModel<TCtx>,
  ctx: TCtx,
): { conditions: Condition[]; where: Where | null } {
  if (!model.scope) return { conditions: [], where: null }
  const where = model.scope(ctx) ?? null
  try {
    return { conditions: parseWhere(model as ResolvedModel<unknown>, where, 'scope'), where }
  } catch (error) {
    throw new TidesyncError('INTERNAL', `the scope of model ${model.name} is invalid`, { cause: error })
  }
}

/**
 * Builds the filter of a read or sync. `where` must already be checked (`parseWhere`): a bad
 * client where is a validation error, a bad scope is a server bug.
 */
export function buildFilter<TCtx>(model: ResolvedModel<TCtx>, where: Where | undefined, ctx: TCtx): Filter {
  const clientConditions = parseWhere(model as ResolvedModel<unknown>, where)
  const scope = scopeConditions(model, ctx)
  const all = [...clientConditions, ...scope.conditions]
  return {
    sql: conditionsSql(all),
    matches: whereMatcher(all),
    key: `${model.name}:${canonicalJson(where ?? {})}:${canonicalJson(scope.where ?? {})}`,
    scopeSql: conditionsSql(scope.conditions),
    matchesScope: whereMatcher(scope.conditions),
  }
}
