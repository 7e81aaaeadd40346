import type { Where, WireRecord } from '@tidesync/protocol'
import { getTableColumns, getTableName } from 'drizzle-orm'
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core'
import { TidesyncConfigError } from '../errors.js'
import type { ModelConfig, WriteCheck } from '../types.js'

const COUNTER_TYPES = new Set([
  'PgInteger',
  'PgSmallInt',
  'PgBigInt53',
  'PgSerial',
  'PgSmallSerial',
  'PgBigSerial53',
])
const RESERVED = new Set(['__proto__', 'constructor', 'prototype'])

/** A model with everything the server needs looked up once. @internal */
export interface ResolvedModel<TCtx = unknown> {
  name: string
  table: PgTable
  tableName: string
  /** Columns by property name (the keys of records on the wire). */
  columns: ReadonlyMap<string, PgColumn>
  uid: PgColumn
  counters: ReadonlySet<string>
  buffered: boolean
  scope?: (ctx: TCtx) => Where | undefined | null
  canWrite?: (ctx: TCtx, record: WireRecord, check: WriteCheck) => boolean | Promise<boolean>
}

/** Checks the model configuration and resolves its columns. Throws `TidesyncConfigError`. */
export function resolveModels<TCtx>(
  models: Record<string, ModelConfig<TCtx>>,
  hasWriteBuffer: boolean,
): Map<string, ResolvedModel<TCtx>> {
  const resolved = new Map<string, ResolvedModel<TCtx>>()
  for (const [name, config] of Object.entries(models)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) || RESERVED.has(name)) {
      throw new TidesyncConfigError(`model name ${JSON.stringify(name)} must be an identifier`)
    }
    const columns = new Map(Object.entries(getTableColumns(config.table) as Record<string, PgColumn>))
    const uid = columns.get('uid')
    if (!uid?.primary)
      throw new TidesyncConfigError(`model ${name}: the table needs a \`uid\` primary key column`)
    if (uid.dataType !== 'string')
      throw new TidesyncConfigError(`model ${name}: \`uid\` must be a uuid or text column`)
    for (const key of columns.keys()) {
      if (RESERVED.has(key)) throw new TidesyncConfigError(`model ${name}: column name ${key} is not allowed`)
    }
    const counters = new Set(config.counters ?? [])
    for (const counter of counters) {
      const column = columns.get(counter)
      if (!column) throw new TidesyncConfigError(`model ${name}: counter ${counter} is not a column`)
      if (!COUNTER_TYPES.has(column.columnType)) {
        throw new TidesyncConfigError(
          `model ${name}: counter ${counter} must be an integer column (${column.columnType})`,
        )
      }
    }
    if (config.buffered && !hasWriteBuffer) {
      throw new TidesyncConfigError(`model ${name} is buffered: pass the \`writeBuffer\` option`)
    }
    resolved.set(name, {
      name,
      table: config.table,
      tableName: getTableName(config.table),
      columns,
      uid,
      counters,
      buffered: config.buffered ?? false,
      scope: config.scope,
      canWrite: config.canWrite,
    })
  }
  return resolved
}
