import type { JsonValue, Where } from '@tidesync/protocol'
import type { Collection, Table } from 'dexie'
import { Dexie, liveQuery } from 'dexie'
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

/** The order of a query: its sort field (`uid` by default) and direction. @internal */
export interface QueryOrder {
  key: string
  descending: boolean
}

/** @internal */
export function orderOf(options: FindOptions): QueryOrder {
  const orderBy = options.orderBy ?? 'uid'
  const descending = orderBy.startsWith('-')
  return { key: descending ? orderBy.slice(1) : orderBy, descending }
}

/** The comparator of a query's order: by its field, then by uid (always ascending). @internal */
export function comparatorOf({ key, descending }: QueryOrder): (a: Row, b: Row) => number {
  if (key === 'uid') return descending ? (a, b) => compare(b.uid, a.uid) : (a, b) => compare(a.uid, b.uid)
  const sign = descending ? -1 : 1
  return (a, b) => sign * compare(a[key], b[key]) || compare(a.uid, b.uid)
}

/** A column IndexedDB orders as `compare` does, and holds for every row (NOT NULL). */
function orderable(model: ModelInfo, key: string): boolean {
  const column = model.columns.get(key)
  if (!column || column.nullable) return false
  return (
    column.kind === 'string' ||
    column.kind === 'number' ||
    column.kind === 'integer' ||
    column.kind === 'date'
  )
}

/** An index that gives a query's rows in its order: its Dexie name and the equal values before the order column. */
interface IndexPlan {
  index: string
  prefix: unknown[]
  /** The where's conditions the index does not decide (the prefix's are met by the range). */
  rest: Where
}

/**
 * The index a query in this order can walk: the primary key; a compound index whose leading
 * columns the where fixes to one value each and whose last column is the order's (only the
 * rows of that prefix are visited); or the order column's own index (the where then filters).
 */
function indexPlan(model: ModelInfo, where: Where, { key }: QueryOrder): IndexPlan | null {
  if (key === 'uid') return { index: ':id', prefix: [], rest: where }
  if (!orderable(model, key)) return null
  for (const columns of model.compoundIndexes) {
    if (columns[columns.length - 1] !== key) continue
    const prefix: unknown[] = []
    for (const column of columns.slice(0, -1)) {
      const condition = where[column]
      const value = isObject(condition) ? undefined : fromWireValue(model.columns.get(column)!, condition)
      if (!indexable(value)) break
      prefix.push(value)
    }
    if (prefix.length === columns.length - 1) {
      const rest = Object.fromEntries(Object.entries(where).filter(([column]) => !columns.includes(column)))
      return { index: `[${columns.join('+')}]`, prefix, rest }
    }
  }
  return model.indexes.includes(key) ? { index: key, prefix: [], rest: where } : null
}

/**
 * The first `limit` matches in index order: the index is walked and stops at `limit` matching
 * rows, so the cost follows `limit` (and how many rows the where skips), not the size of the
 * table. The index gives equal values in uid order; descending, the rows that tie with the last
 * one are read in full so that the uid order among them is right.
 */
async function walkIndex(
  db: LocalDb,
  model: ModelInfo,
  where: Where,
  order: QueryOrder,
  plan: IndexPlan,
  limit: number,
): Promise<Row[]> {
  const table = db.records(model)
  const match = (row: Row) => matchesWhere(model, where, row)
  const { index, prefix, rest } = plan
  let collection =
    prefix.length > 0
      ? table.where(index).between([...prefix, Dexie.minKey], [...prefix, Dexie.maxKey])
      : table.orderBy(index)
  if (order.descending) collection = collection.reverse()
  // Without a filter, IndexedDB hands over `limit` rows at once (no cursor stepping).
  if (Object.keys(rest).length > 0) collection = collection.filter((row) => matchesWhere(model, rest, row))
  const rows = await collection.limit(limit).toArray()
  if (!order.descending || order.key === 'uid' || rows.length < limit) return rows
  const last = rows[rows.length - 1]![order.key]
  const ties = await table
    .where(index)
    .equals((prefix.length > 0 ? [...prefix, last] : last) as string)
    .filter(match)
    .toArray()
  const byUid = new Map(rows.map((row) => [row.uid, row]))
  for (const row of ties) byUid.set(row.uid, row)
  return [...byUid.values()].sort(comparatorOf(order)).slice(0, limit)
}

/**
 * Runs a local query: where (same semantics as the server), then order and limit. With a limit
 * and an order an index can give, the index is walked (see `walkIndex`); otherwise the
 * candidates (through an index of the where when there is one) are read and sorted.
 */
export async function queryRecords(
  db: LocalDb,
  model: ModelInfo,
  where: Where,
  options: FindOptions = {},
): Promise<Row[]> {
  const order = orderOf(options)
  const plan = options.limit !== undefined ? indexPlan(model, where, order) : null
  if (plan) return walkIndex(db, model, where, order, plan, options.limit!)
  const rows = (await candidates(db, model, where).toArray()).filter((row) => matchesWhere(model, where, row))
  rows.sort(comparatorOf(order))
  return options.limit !== undefined ? rows.slice(0, options.limit) : rows
}

/**
 * How many local records match `where`: what `queryRecords(...).length` gives, without the
 * rows. No where: IndexedDB's `count()`, which reads no record. Otherwise the candidates (through
 * an index of the where when there is one) are tested one by one and counted, not collected.
 */
export async function countRecords(db: LocalDb, model: ModelInfo, where: Where): Promise<number> {
  if (Object.keys(where).length === 0) return db.records(model).count()
  return candidates(db, model, where)
    .filter((row) => matchesWhere(model, where, row))
    .count()
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
