import {
  type DBCore,
  type DBCoreMutateRequest,
  type DBCoreMutateResponse,
  Dexie,
  type Middleware,
} from 'dexie'

type Row = Record<string, unknown>

/**
 * What one committed transaction changed in one record table. `rows` maps each written uid to
 * its row as stored, or to null when it was deleted. `reset`: the change is not known row by row
 * (another tab or another connection wrote, a range was deleted): read again.
 */
export interface RecordChanges {
  readonly rows: ReadonlyMap<string, Row | null>
  readonly reset: boolean
}

type Listener = (changes: RecordChanges) => void

/** The IndexedDB transaction under a DBCore request, and the parts Dexie notes on it. */
interface NativeTransaction {
  mutatedParts?: object
  addEventListener(type: 'complete', listener: () => void): void
}

interface Pending {
  rows: Map<string, Row | null>
  reset: boolean
}

/**
 * The record tables' changes, as this connection commits them, with their values: what lets a
 * live query update its result without reading it again (`live/live-records.ts`).
 *
 * A Dexie middleware sees every write this connection makes to a record table (`r_<model>`),
 * whoever makes it (local writes, pulled pages, live changes, push answers), and keeps the rows
 * written per transaction; when the transaction commits they go to the table's listeners (an
 * aborted transaction sends nothing). Rows are copied when written (`structuredClone`), and only
 * while the table has listeners: the caller may go on using its object, and a table nobody
 * watches costs nothing. Listeners get the rows as stored and must not change them.
 *
 * Writes by anyone else (another tab, another connection of this tab) reach Dexie's
 * `storagemutated` event without values; they are passed on as `reset`. This connection's own
 * commits fire that event too: they are told apart by their parts object, which is the one the
 * middleware saw on the transaction.
 * @internal
 */
export class ChangeFeed {
  private readonly listeners = new Map<string, Set<Listener>>()
  private readonly pending = new WeakMap<object, Map<string, Pending>>()
  /** `mutatedParts` of this connection's transactions (Dexie fires them on commit). */
  private readonly ownParts = new WeakSet<object>()
  private readonly prefix: string

  constructor(dbName: string) {
    this.prefix = `idb://${dbName}/`
    Dexie.on('storagemutated', this.onStorageMutated)
  }

  /** Listens to the committed changes of one record table. Returns the function that stops it. */
  listen(table: string, listener: Listener): () => void {
    let set = this.listeners.get(table)
    if (!set) {
      set = new Set()
      this.listeners.set(table, set)
    }
    set.add(listener)
    return () => {
      set.delete(listener)
    }
  }

  close(): void {
    Dexie.on('storagemutated').unsubscribe(this.onStorageMutated)
  }

  /** The middleware to install on the connection's Dexie (`db.use(feed.middleware)`). */
  readonly middleware: Middleware<DBCore> = {
    stack: 'dbcore',
    name: 'tidesync-change-feed',
    create: (down) => ({
      ...down,
      table: (name) => {
        const table = down.table(name)
        if (!name.startsWith('r_')) return table
        return {
          ...table,
          mutate: (request) => table.mutate(request).then((response) => this.record(name, request, response)),
        }
      },
    }),
  }

  private record(
    table: string,
    request: DBCoreMutateRequest,
    response: DBCoreMutateResponse,
  ): DBCoreMutateResponse {
    const trans = request.trans as unknown as NativeTransaction
    if (trans.mutatedParts) this.ownParts.add(trans.mutatedParts)
    if (!this.listeners.get(table)?.size) return response
    let tables = this.pending.get(trans)
    if (!tables) {
      tables = new Map()
      this.pending.set(trans, tables)
      trans.addEventListener('complete', () => this.publish(tables!))
    }
    let pending = tables.get(table)
    if (!pending) {
      pending = { rows: new Map(), reset: false }
      tables.set(table, pending)
    }
    if (response.numFailures > 0) pending.reset = true
    else if (request.type === 'put' || request.type === 'add') {
      for (const value of request.values as Row[])
        pending.rows.set(value.uid as string, structuredClone(value))
    } else if (request.type === 'delete') {
      for (const key of request.keys) pending.rows.set(key as string, null)
    } else pending.reset = true
    return response
  }

  private publish(tables: Map<string, Pending>): void {
    for (const [table, pending] of tables) {
      for (const listener of this.listeners.get(table) ?? []) listener(pending)
    }
  }

  /** Changes this connection did not make: the tables named get a `reset`. */
  private readonly onStorageMutated = (parts: Record<string, unknown>): void => {
    if (this.ownParts.has(parts)) return
    const tables = new Set<string>()
    for (const part of Object.keys(parts)) {
      if (!part.startsWith(this.prefix)) continue
      tables.add(part.slice(this.prefix.length, part.indexOf('/', this.prefix.length)))
    }
    const reset: RecordChanges = { rows: new Map(), reset: true }
    for (const table of tables) for (const listener of this.listeners.get(table) ?? []) listener(reset)
  }
}
