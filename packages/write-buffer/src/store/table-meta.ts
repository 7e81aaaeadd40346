import type { Json } from '@tidesync/ipc'
import { getTableColumns, is, SQL, sql } from 'drizzle-orm'
import { getTableConfig, type PgColumn, type PgTable } from 'drizzle-orm/pg-core'
import { WriteBufferError } from '../errors.js'
import { encodeValue, isNumericColumn } from './codec.js'
import { tableId } from './keys.js'

export interface ColumnMeta {
  /** The drizzle property name (what the API takes). */
  key: string
  /** The database column name. */
  name: string
  column: PgColumn
  /** The type used to read this column from a JSON record (`jsonb_to_recordset ... AS v(...)`). */
  sqlType: string
  numeric: boolean
  /** NOT NULL without any default: an insert must give it. */
  required: boolean
  generated: boolean
}

/** An encoded row change key: the primary key values in key-column order. */
export type EncodedKey = Json[]

/**
 * What the buffer knows about one drizzle table: columns, primary key, and the validation and
 * encoding of every input, so bad input is refused at the call.
 */
export class TableMeta {
  readonly id: string
  readonly name: string
  readonly schema: string | undefined
  readonly columns = new Map<string, ColumnMeta>()
  readonly keyColumns: ColumnMeta[]
  /** Columns with a `$defaultFn`, in table order. */
  private readonly defaultFnColumns: ColumnMeta[]
  /** Columns an insert must give (NOT NULL without any default). */
  private readonly requiredColumns: ColumnMeta[]
  /** `"schema"."table"` */
  readonly sqlName: SQL

  constructor(
    readonly table: PgTable,
    readonly connection: string,
    primaryKey: string | string[] | undefined,
    defaultPrimaryKey: string | string[],
  ) {
    const config = getTableConfig(table)
    this.name = config.name
    this.schema = config.schema
    this.id = tableId(connection, config.schema, config.name)
    this.sqlName = config.schema
      ? sql`${sql.identifier(config.schema)}.${sql.identifier(config.name)}`
      : sql`${sql.identifier(config.name)}`
    for (const [key, column] of Object.entries(getTableColumns(table)) as [string, PgColumn][]) {
      this.columns.set(key, {
        key,
        name: column.name,
        column,
        sqlType: sqlTypeOf(column),
        numeric: isNumericColumn(column),
        required: column.notNull && !column.hasDefault && !column.generated && !column.generatedIdentity,
        generated: column.generated !== undefined || column.generatedIdentity?.type === 'always',
      })
    }
    this.defaultFnColumns = [...this.columns.values()].filter((c) => c.column.defaultFn !== undefined)
    this.requiredColumns = [...this.columns.values()].filter((c) => c.required)
    const keys = primaryKey ?? declaredPrimaryKey(this, config.primaryKeys) ?? defaultPrimaryKey
    const keyList = Array.isArray(keys) ? keys : [keys]
    if (keyList.length === 0)
      throw new WriteBufferError('WB_INVALID_OPTION', `Table "${this.name}" has an empty primary key.`)
    this.keyColumns = keyList.map((key) => {
      const meta = this.columns.get(key) ?? [...this.columns.values()].find((c) => c.name === key)
      if (!meta) {
        throw new WriteBufferError(
          'WB_INVALID_OPTION',
          `Table "${this.name}" has no column "${key}" for its primary key: pass { primaryKey } to buffer.table().`,
        )
      }
      return meta
    })
  }

  column(key: string): ColumnMeta {
    const meta = typeof key === 'string' ? this.columns.get(key) : undefined
    if (!meta) {
      throw new WriteBufferError(
        'WB_UNKNOWN_COLUMN',
        `Table "${this.name}" has no column ${JSON.stringify(key)}.`,
        {
          table: this.id,
        },
      )
    }
    return meta
  }

  isKey(meta: ColumnMeta): boolean {
    return this.keyColumns.includes(meta)
  }

  /** Validates and encodes a `where()` argument: the full primary key, nothing else. */
  encodeKey(input: unknown): EncodedKey {
    const [first] = this.keyColumns
    if (input !== null && typeof input === 'object' && !(input instanceof Date)) {
      const given = Object.keys(input)
      for (const key of given) {
        if (!this.keyColumns.some((c) => c.key === key)) {
          throw new WriteBufferError(
            'WB_INVALID_KEY',
            `where() takes the primary key (${this.keyNames()}) of "${this.name}"; "${key}" is not part of it.`,
            { table: this.id },
          )
        }
      }
      return this.keyColumns.map((meta) => {
        const value = (input as Record<string, unknown>)[meta.key]
        if (value === undefined || value === null) {
          throw new WriteBufferError(
            'WB_INVALID_KEY',
            `where() on "${this.name}" needs every primary key column (${this.keyNames()}); "${meta.key}" is missing.`,
            { table: this.id },
          )
        }
        return this.encodeKeyPart(meta, value)
      })
    }
    if (this.keyColumns.length !== 1 || !first) {
      throw new WriteBufferError(
        'WB_INVALID_KEY',
        `"${this.name}" has a composite primary key: where() takes an object with ${this.keyNames()}.`,
        { table: this.id },
      )
    }
    if (input === undefined || input === null) {
      throw new WriteBufferError('WB_INVALID_KEY', `where() on "${this.name}" needs a primary key value.`, {
        table: this.id,
      })
    }
    return [this.encodeKeyPart(first, input)]
  }

  /** Validates and encodes `update()` fields (at least one, known, not key, not generated). */
  encodeFields(fields: unknown, forUpdate: boolean): Record<string, Json> {
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      throw new WriteBufferError(
        'WB_EMPTY_UPDATE',
        `update() on "${this.name}" takes an object of columns.`,
        {
          table: this.id,
        },
      )
    }
    const out: Record<string, Json> = {}
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue
      const meta = this.column(key)
      if (forUpdate && this.isKey(meta)) {
        throw new WriteBufferError(
          'WB_UNKNOWN_COLUMN',
          `update() cannot change the primary key column "${key}".`,
          {
            table: this.id,
          },
        )
      }
      if (meta.generated) {
        throw new WriteBufferError(
          'WB_UNKNOWN_COLUMN',
          `Column "${key}" is generated: it cannot be written.`,
          {
            table: this.id,
          },
        )
      }
      out[key] = encodeValue(meta.column, key, value)
    }
    return out
  }

  /** Validates and encodes an `insert()` row; runs `$defaultFn`s now, so a retry inserts the same row. */
  encodeRow(row: unknown): Record<string, Json> {
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new WriteBufferError('WB_INVALID_VALUE', `insert() on "${this.name}" takes an object.`, {
        table: this.id,
      })
    }
    const input = row as Record<string, unknown>
    // `$defaultFn`s of the columns the row leaves out, in table order, before any validation.
    const defaults: [ColumnMeta, unknown][] = []
    for (const meta of this.defaultFnColumns) {
      if (input[meta.key] !== undefined) continue
      const value = (meta.column.defaultFn as () => unknown)()
      if (!is(value, SQL)) defaults.push([meta, value])
    }
    const out: Record<string, Json> = {}
    for (const key in input) {
      if (!Object.hasOwn(input, key)) continue
      const value = input[key]
      if (value === undefined) continue
      out[key] = this.encodeInsertValue(this.column(key), value)
    }
    for (const [meta, value] of defaults) out[meta.key] = this.encodeInsertValue(meta, value)
    for (const meta of this.requiredColumns) {
      if (out[meta.key] === undefined) {
        throw new WriteBufferError(
          'WB_MISSING_COLUMN',
          `insert() on "${this.name}" needs column "${meta.key}" (NOT NULL without a default).`,
          { table: this.id },
        )
      }
    }
    return out
  }

  private encodeInsertValue(meta: ColumnMeta, value: unknown): Json {
    if (meta.generated) {
      throw new WriteBufferError(
        'WB_UNKNOWN_COLUMN',
        `Column "${meta.key}" is generated: it cannot be written.`,
        {
          table: this.id,
        },
      )
    }
    return encodeValue(meta.column, meta.key, value)
  }

  /** Adds `$onUpdateFn` columns the caller did not set (as drizzle's update() does). */
  withOnUpdate(fields: Record<string, unknown>): Record<string, unknown> {
    let out = fields
    for (const meta of this.columns.values()) {
      const fn = meta.column.onUpdateFn
      if (!fn || fields[meta.key] !== undefined || this.isKey(meta)) continue
      const value = fn()
      if (is(value, SQL)) continue
      if (out === fields) out = { ...fields }
      out[meta.key] = value
    }
    return out
  }

  private encodeKeyPart(meta: ColumnMeta, value: unknown): Json {
    try {
      return encodeValue(meta.column, meta.key, value)
    } catch (error) {
      throw new WriteBufferError('WB_INVALID_KEY', (error as Error).message, { table: this.id })
    }
  }

  private keyNames(): string {
    return this.keyColumns.map((c) => c.key).join(', ')
  }
}

function declaredPrimaryKey(meta: TableMeta, composite: { columns: PgColumn[] }[]): string[] | undefined {
  const [pk] = composite
  // Extra-config columns are copies of the table's columns: match them by database name.
  const keyOf = (column: PgColumn) => [...meta.columns.values()].find((c) => c.name === column.name)?.key
  if (pk) {
    const keys = pk.columns.map(keyOf)
    if (keys.every((k): k is string => k !== undefined)) return keys
  }
  const primary = [...meta.columns.values()].filter((c) => c.column.primary).map((c) => c.key)
  return primary.length > 0 ? primary : undefined
}

function sqlTypeOf(column: PgColumn): string {
  const type = column.getSQLType()
  const serial: Record<string, string> = { serial: 'integer', bigserial: 'bigint', smallserial: 'smallint' }
  return serial[type] ?? type
}

/** The hash field of one row and column: `[column, ...key]` as JSON. */
export function rowField(key: EncodedKey, column: string): string {
  return JSON.stringify([column, ...key])
}

export function parseRowField(field: string): { key: EncodedKey; column: string } | null {
  try {
    const parsed = JSON.parse(field) as unknown
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || parsed.length < 2) return null
    return { column: parsed[0], key: parsed.slice(1) as EncodedKey }
  } catch {
    return null
  }
}

export function rowId(key: EncodedKey): string {
  return JSON.stringify(key)
}
