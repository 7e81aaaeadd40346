import type { Where } from '@tidesync/protocol'
import { Observable } from 'rxjs'
import type { RecordChanges } from '../db/change-feed.js'
import type { LocalDb } from '../db/database.js'
import type { ModelInfo } from '../schema/model.js'
import { matchesWhere } from '../where.js'
import { comparatorOf, countRecords, type FindOptions, orderOf, queryRecords } from './query.js'

type Row = Record<string, unknown>

/**
 * One read at a time for a live query: `run()` during a read makes that read go once more when
 * it ends (a commit may have landed after it began), and only the last value is delivered.
 * Nothing is delivered, and no failure reported, once `closed()` holds.
 */
class SerialRead<T> {
  reading = false
  private again = false

  constructor(
    private readonly read: () => Promise<T>,
    private readonly deliver: (value: T) => void,
    private readonly fail: (error: unknown) => void,
    private readonly closed: () => boolean,
  ) {}

  async run(): Promise<void> {
    if (this.reading) {
      this.again = true
      return
    }
    this.reading = true
    try {
      let value: T
      do {
        this.again = false
        value = await this.read()
      } while (this.again && !this.closed())
      if (!this.closed()) this.deliver(value)
    } catch (error) {
      if (!this.closed()) this.fail(error)
    } finally {
      this.reading = false
    }
  }
}

/**
 * A live query that keeps its result up to date from the rows the connection commits (the change
 * feed, `db/change-feed.ts`) instead of reading it again after every change: a committed row is
 * taken out of the result, and put back in its place if it still matches; the result is read
 * again only when that cannot be worked out (a row left a full `limit` window, or a change the
 * feed has no values for: another tab, another connection). It emits the result at once and
 * after every commit that changed it, a new array each time; the rows in it are shared and must
 * not be changed.
 *
 * A change that commits while the result is being read may or may not be in what is read:
 * the read is then done once more before anything is emitted.
 */
export function liveRecords(
  db: LocalDb,
  model: ModelInfo,
  where: Where,
  options: FindOptions,
): Observable<Row[]> {
  return new Observable<Row[]>((subscriber) => {
    const compare = comparatorOf(orderOf(options))
    const limit = options.limit
    let result: Row[] | null = null
    /** uid -> row, of the rows in `result`. */
    let members = new Map<unknown, Row>()
    let closed = false

    const reader = new SerialRead(
      () => queryRecords(db, model, where, options),
      (rows) => {
        result = rows
        members = new Map(rows.map((row) => [row.uid, row]))
        subscriber.next(rows.slice())
      },
      (error) => subscriber.error(error),
      () => closed,
    )
    const read = () => reader.run()

    /** Where `row` goes in the sorted result (binary search). */
    const positionOf = (rows: Row[], row: Row): number => {
      let low = 0
      let high = rows.length
      while (low < high) {
        const middle = (low + high) >>> 1
        if (compare(rows[middle]!, row) < 0) low = middle + 1
        else high = middle
      }
      return low
    }

    const apply = (changes: RecordChanges): void => {
      if (closed) return
      if (reader.reading || !result || changes.reset) {
        void read()
        return
      }
      const rows = result
      // A full window knows the rows up to its last one: a row sorting after it may have others
      // (not read) before it.
      const boundary = limit !== undefined && rows.length >= limit ? rows[rows.length - 1] : undefined
      let changed = false
      for (const [uid, row] of changes.rows) {
        const held = members.get(uid)
        if (held) {
          rows.splice(positionOf(rows, held), 1)
          members.delete(uid)
          changed = true
        }
        if (!row || !matchesWhere(model, where, row)) continue
        if (boundary && compare(row, boundary) > 0) continue
        rows.splice(positionOf(rows, row), 0, row)
        members.set(uid, row)
        changed = true
      }
      if (limit !== undefined && rows.length > limit) {
        for (const row of rows.splice(limit)) members.delete(row.uid)
      }
      // A row left the full window: which one comes next is not known without reading.
      if (boundary && rows.length < limit!) {
        void read()
        return
      }
      if (changed) subscriber.next(rows.slice())
    }

    const stop = db.feed.listen(model.recordsTable, apply)
    void read()
    return () => {
      closed = true
      stop()
    }
  })
}

/** One record, live: the row (undefined while there is none), updated from the change feed. */
export function liveRecord(db: LocalDb, model: ModelInfo, uid: string): Observable<Row | undefined> {
  return new Observable<Row | undefined>((subscriber) => {
    let closed = false
    let known = false
    let current: Row | undefined

    const emit = (row: Row | undefined) => {
      if (known && row === current) return
      known = true
      current = row
      subscriber.next(row)
    }
    const reader = new SerialRead(
      () => db.records(model).get(uid),
      emit,
      (error) => subscriber.error(error),
      () => closed,
    )
    const read = () => reader.run()
    const stop = db.feed.listen(model.recordsTable, (changes) => {
      if (closed) return
      if (reader.reading || !known || changes.reset) {
        void read()
        return
      }
      if (changes.rows.has(uid)) emit(changes.rows.get(uid) ?? undefined)
    })
    void read()
    return () => {
      closed = true
      stop()
    }
  })
}

/**
 * How many records match `where`, live: counted at once and again after every commit to the
 * model's records (this connection's, another tab's or another connection's), one count at a
 * time (commits during a count make one more count, not one each). Emits when the number
 * changed.
 */
export function liveCount(db: LocalDb, model: ModelInfo, where: Where): Observable<number> {
  return new Observable<number>((subscriber) => {
    let closed = false
    let current: number | undefined

    const reader = new SerialRead(
      () => countRecords(db, model, where),
      (count) => {
        if (count === current) return
        current = count
        subscriber.next(count)
      },
      (error) => subscriber.error(error),
      () => closed,
    )
    const read = () => reader.run()
    const stop = db.feed.listen(model.recordsTable, () => {
      if (!closed) void read()
    })
    void read()
    return () => {
      closed = true
      stop()
    }
  })
}
