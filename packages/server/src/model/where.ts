import {
  comparisonOf,
  parseWhere as parseWireWhere,
  type Condition as WhereCondition,
  type WhereSchema,
} from '@tidesync/protocol'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { TidesyncValidationError } from '../errors.js'
import type { ResolvedModel } from './resolve-models.js'
import { parseColumnValue } from './values.js'

/** One checked condition of a `where`, with values already converted for drizzle. @internal */
export type Condition = WhereCondition<PgColumn>

function schemaOf(model: ResolvedModel<unknown>): WhereSchema<PgColumn> {
  return {
    model: model.name,
    column: (key) => model.columns.get(key),
    comparison: comparisonOf,
    value: parseColumnValue,
    error: (code, message, path) => new TidesyncValidationError(code, message, path),
  }
}

/**
 * Checks a `where` against a model with the protocol's rules (`parseWhere` of
 * @tidesync/protocol): known columns only (`UNKNOWN_COLUMN`), values of the column's type
 * (`INVALID_TYPE`/`INVALID_DATE`, converted for drizzle), operators `in` and `gte/gt/lte/lt`.
 */
export function parseWhere(model: ResolvedModel<unknown>, where: unknown, path = 'where'): Condition[] {
  return parseWireWhere(where, schemaOf(model), path)
}
