import { type Comparison, comparisonOf } from '@tidesync/protocol'
import { type Column, getTableColumns, getTableName, is, SQL, Table } from 'drizzle-orm'
import { TidesyncClientError } from '../errors.js'
import type { ModelOptions, Schema } from '../types.js'

/** How a column's values are checked and carried on the wire. */
export type ColumnKind =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  /** A JS `Date` locally, an ISO-8601 string on the wire. */
  | 'date'
  | 'json'
  | 'array'
  | 'any'

/** What the client knows about one column, read from the drizzle column at start-up. */
export interface ColumnInfo {
  /** The property name in records (drizzle's key). */
  readonly key: string
  /** The SQL column name. */
  readonly name: string
  readonly kind: ColumnKind
  /** How `where` conditions compare its values (the server's SQL semantics). */
  readonly comparison: Comparison
  readonly nullable: boolean
  /** The column has a default (in the client or only in the database). */
  readonly hasDefault: boolean
  readonly enumValues: readonly string[] | undefined
  readonly maxLength: number | undefined
  readonly counter: boolean
  /** Makes the value a create gets when the caller leaves the column out; undefined: the server decides. */
  readonly makeDefault: ((now: number) => unknown) | undefined
  /** Makes a new value on every update (drizzle `$onUpdate`). */
  readonly makeOnUpdate: (() => unknown) | undefined
}

/**
 * What the client knows about one model. Its identity is `key`, the schema key: collections,
 * local tables, checkpoints and outbox entries go by it. `wireName` is only what the server
 * calls it, used where a request or a change leaves the client and where a push comes in.
 */
export interface ModelInfo {
  /** The schema key: how the app names the collection, and the model's identity in the client. */
  readonly key: string
  /** The model's name on the wire (`ModelOptions.name`, by default the key). */
  readonly wireName: string
  /** The drizzle table. */
  readonly table: Table
  readonly tableName: string
  /** Columns by property key. */
  readonly columns: ReadonlyMap<string, ColumnInfo>
  readonly counters: ReadonlySet<string>
  readonly indexes: readonly string[]
  /** Compound indexes (`[a+b]` in Dexie), their columns in order. */
  readonly compoundIndexes: ReadonlyArray<readonly string[]>
  /** The Dexie table holding the records. */
  readonly recordsTable: string
  /** The Dexie table holding per-record metadata. */
  readonly metaTable: string
  /** The Dexie table holding the metadata of records loaded in bulk, one row per chunk (`MetaPageRow`). */
  readonly pagesTable: string
}

const INTEGER_TYPES = new Set([
  'PgInteger',
  'PgSmallInt',
  'PgSerial',
  'PgSmallSerial',
  'PgBigInt53',
  'PgBigSerial53',
  'SQLiteInteger',
  'MySqlInt',
  'MySqlSmallInt',
  'MySqlTinyInt',
  'MySqlMediumInt',
  'MySqlBigInt53',
])

function kindOf(column: Column): ColumnKind {
  switch (column.dataType) {
    case 'string':
      return 'string'
    case 'number':
      return INTEGER_TYPES.has(column.columnType) ? 'integer' : 'number'
    case 'boolean':
      return 'boolean'
    case 'date':
      return 'date'
    case 'json':
      return 'json'
    case 'array':
      return 'array'
    default:
      return 'any'
  }
}

function defaultMaker(column: Column, kind: ColumnKind): ColumnInfo['makeDefault'] {
  if (column.defaultFn) {
    const fn = column.defaultFn
    return () => fn()
  }
  if (column.default !== undefined) {
    const value = column.default
    if (is(value, SQL)) {
      // An SQL default the client cannot evaluate. For a timestamp it is `now()` in practice
      // (drizzle's `defaultNow()`): use the local clock so the record shows a time at once.
      return kind === 'date' ? (now) => new Date(now) : undefined
    }
    return () => structuredClone(value)
  }
  return undefined
}

function columnInfo(key: string, column: Column, counters: ReadonlySet<string>): ColumnInfo {
  const kind = kindOf(column)
  const length = (column as unknown as { length?: unknown }).length
  const onUpdate = column.onUpdateFn
  return {
    key,
    name: column.name,
    kind,
    comparison: comparisonOf(column),
    nullable: !column.notNull,
    hasDefault: column.hasDefault || column.defaultFn !== undefined,
    enumValues: column.enumValues && column.enumValues.length > 0 ? column.enumValues : undefined,
    maxLength: typeof length === 'number' ? length : undefined,
    counter: counters.has(key),
    makeDefault: defaultMaker(column, kind),
    makeOnUpdate: onUpdate ? () => onUpdate() : undefined,
  }
}

/**
 * Reads the models out of a schema: every drizzle table in it (other exports, such as
 * relations, are skipped). Each table needs a `uid` column (the record id).
 */
export function readSchema(
  schema: Schema,
  options: Record<string, ModelOptions | undefined> = {},
): ModelInfo[] {
  const models: ModelInfo[] = []
  const names = new Set<string>()
  for (const [key, value] of Object.entries(schema)) {
    if (!is(value, Table)) continue
    const opts = options[key] ?? {}
    const counters = new Set(opts.counters ?? [])
    const columns = new Map<string, ColumnInfo>()
    for (const [columnKey, column] of Object.entries(getTableColumns(value))) {
      columns.set(columnKey, columnInfo(columnKey, column as Column, counters))
    }
    const uid = columns.get('uid')
    if (!uid || (uid.kind !== 'string' && uid.kind !== 'any')) {
      throw new TidesyncClientError(
        'CLIENT_CONFIG',
        `Model '${key}' needs a string column 'uid' (the record id)`,
      )
    }
    for (const counter of counters) {
      const column = columns.get(counter)
      if (!column || (column.kind !== 'integer' && column.kind !== 'number')) {
        throw new TidesyncClientError(
          'CLIENT_CONFIG',
          `Counter '${counter}' of model '${key}' is not a numeric column`,
        )
      }
    }
    for (const index of opts.indexes ?? []) {
      for (const column of Array.isArray(index) ? index : [index]) {
        if (!columns.has(column)) {
          throw new TidesyncClientError(
            'CLIENT_CONFIG',
            `Index '${column}' of model '${key}' is not a column`,
          )
        }
      }
    }
    const wireName = opts.name ?? key
    if (names.has(wireName))
      throw new TidesyncClientError('CLIENT_CONFIG', `Two models are named '${wireName}'`)
    names.add(wireName)
    models.push({
      key,
      wireName,
      table: value,
      tableName: getTableName(value),
      columns,
      counters,
      indexes: (opts.indexes ?? []).filter((index): index is string => !Array.isArray(index)),
      compoundIndexes: (opts.indexes ?? []).filter((index): index is string[] => Array.isArray(index)),
      recordsTable: `r_${key}`,
      metaTable: `m_${key}`,
      pagesTable: `p_${key}`,
    })
  }
  for (const key of Object.keys(options)) {
    if (!models.some((model) => model.key === key)) {
      throw new TidesyncClientError(
        'CLIENT_CONFIG',
        `Options given for '${key}', which is not a table of the schema`,
      )
    }
  }
  if (models.length === 0) throw new TidesyncClientError('CLIENT_CONFIG', 'The schema holds no drizzle table')
  return models
}
