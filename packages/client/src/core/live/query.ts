import type { JsonValue, Where } from '@tidesync/protocol'
import type { Collection, Table } from 'dexie'
import { liveQuery } from 'dexie'
import { Observable } from 'rxjs'
import type { LocalDb } from '../db/database.js'
import { fromWireValue } from '../schema/codec.js'
import type { ColumnInfo, ModelInfo } from '../schema/model.js'
import { matchesWhere } from '../where.js'

type Row = Record<string, unknown>

/** Options of a local query. */
export interface FindOptions<R = Row> {
  /**
   * Sort by this field (`'-field'` for descending). Records without a value sort first.
   * @default by uid, which for UUIDv7 is creation order
   */
  orderBy?: (keyof R & string) | `-${keyof R & string}`
  /** At most this many records. @default no limit */
  limit?: number
  /**
   * Keep this (model, where) in sync with the server while the query is subscribed (delta or
   * full sync on connect, live pushes). `false` reads only what is already local.
   * @default true
   */
  sync?: boolean
}

function indexable(value: unknown): boolean {
  return (
    typeof value === 'string' ||
    (typeof value === 'number' && Number.isFinite(value)) ||
    value instanceof Date
  )
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Reads through an index when the where constrains an indexed column; otherwise scans. */
function candidates(
  db: LocalDb,
  model: ModelInfo,
  where: Where,
): Collection<Row, string> | Table<Row, string> {
  const table = db.records(model)
  for (const key of model.indexes) {
    const column = model.columns.get(key) as ColumnInfo
    const condition = where[key] as Record<string, JsonValue> | JsonValue | undefined
    if (condition === undefined) continue
    const local = (value: JsonValue | undefined) => fromWireValue(column, value)
    if (isObject(condition) && Array.isArray(condition.in)) {
      const values = condition.in.map(local)
      if (values.every(indexable)) return table.where(key).anyOf(values as string[])
    } else if (isObject(condition)) {
      const lower = condition.gte ?? condition.gt
      const upper = condition.lte ?? condition.lt
      if (lower !== undefined && upper !== undefined && indexable(local(lower)) && indexable(local(upper))) {
        return table
          .where(key)
          .between(
            local(lower) as string,
            local(upper) as string,
            condition.gte !== undefined,
            condition.lte !== undefined,
          )
      }
    } else if (indexable(local(condition))) {
      return table.where(key).equals(local(condition) as string)
    }
  }
  return table
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === null || a === undefined) return -1
  if (b === null || b === undefined) return 1
  const x = a instanceof Date ? a.getTime() : a
  const y = b instanceof Date ? b.getTime() : b
  return (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0
}

/** Runs a local query: where (same semantics as the server), then order and limit. */
export async function queryRecords(
  db: LocalDb,
  model: ModelInfo,
  where: Where,
  options: FindOptions = {},
): Promise<Row[]> {
  const rows = (await candidates(db, model, where).toArray()).filter((row) => matchesWhere(model, where, row))
  if (options.orderBy) {
    const descending = options.orderBy.startsWith('-')
    const key = descending ? options.orderBy.slice(1) : options.orderBy
    rows.sort((a, b) => (descending ? -1 : 1) * compare(a[key], b[key]) || compare(a.uid, b.uid))
  } else rows.sort((a, b) => compare(a.uid, b.uid))
  return options.limit !== undefined ? rows.slice(0, options.limit) : rows
}

/**
 * An RxJS Observable over a Dexie live query: emits the result at once and again after every
 * committed change (in this tab or another) that touches what the query read.
 */
export function live<T>(querier: () => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const subscription = liveQuery(querier).subscribe({
      next: (value) => subscriber.next(value),
      error: (error) => subscriber.error(error),
    })
    return () => subscription.unsubscribe()
  })
}
