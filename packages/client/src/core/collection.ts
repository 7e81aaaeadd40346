import type { Table } from 'drizzle-orm'
import { Observable, type Subscriber } from 'rxjs'
import type { ClientContext } from './context.js'
import { liveCount, liveRecord, liveRecords } from './live/live-records.js'
import { countRecords, type FindOptions, queryRecords } from './live/query.js'
import { createRecord, deleteRecord, incrementRecord, updateRecord } from './local-writes.js'
import type { ModelInfo } from './schema/model.js'
import type { SubsetState } from './sync/subsets.js'
import type { SyncEngine } from './sync/sync-engine.js'
import type { CreateInput, NumericKeys, RecordOf, UpdatePatch, WhereOf } from './types.js'
import { normalizeWhere } from './where.js'

/** What a collection needs from its client. @internal */
export interface CollectionHost {
  ready(): Promise<{ ctx: ClientContext; engine: SyncEngine }>
}

/**
 * One model's records: local writes that sync, and live queries. Every write applies locally
 * at once (in the same transaction as its outbox entry); the sync engine pushes it when online
 * (it watches the outbox).
 *
 * @example
 * const todos = client.collection('todos')
 * const todo = await todos.create({ title: 'Buy milk', done: false })
 * await todos.update(todo.uid, { done: true })
 * todos.find$({ done: false }).subscribe((open) => render(open))
 */
export class Collection<T extends Table = Table, R extends Record<string, unknown> = RecordOf<T>> {
  constructor(
    private readonly host: CollectionHost,
    /** @internal */
    readonly model: ModelInfo,
  ) {}

  /** The collection's name (its schema key). */
  get name(): string {
    return this.model.key
  }

  /** Creates a record with a new UUIDv7 uid (unless `data.uid` is given). */
  async create(data: CreateInput<T>): Promise<R> {
    const { ctx } = await this.host.ready()
    return (await createRecord(ctx, this.model, data as Record<string, unknown>)) as R
  }

  /** Changes the given fields; only the fields whose value differs are queued. */
  async update(uid: string, patch: UpdatePatch<T>): Promise<R> {
    const { ctx } = await this.host.ready()
    return (await updateRecord(ctx, this.model, uid, patch as Record<string, unknown>)) as R
  }

  /** Deletes a record (a local tombstone until the server confirms). False if it did not exist. */
  async delete(uid: string): Promise<boolean> {
    const { ctx } = await this.host.ready()
    return deleteRecord(ctx, this.model, uid)
  }

  /** Adds `n` to a counter column; concurrent increments from many clients add up. */
  async increment(uid: string, column: NumericKeys<R>, n = 1): Promise<R> {
    const { ctx } = await this.host.ready()
    return (await incrementRecord(ctx, this.model, uid, column, n)) as R
  }

  /** The local record, or undefined. */
  async get(uid: string): Promise<R | undefined> {
    const { ctx } = await this.host.ready()
    return (await ctx.db.records(this.model).get(uid)) as R | undefined
  }

  /** The local records matching `where` (no sync). */
  async find(where?: WhereOf<R>, options: Omit<FindOptions<R>, 'sync'> = {}): Promise<R[]> {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    const { ctx } = await this.host.ready()
    return (await queryRecords(ctx.db, this.model, normalized.wire, options as FindOptions)) as R[]
  }

  /**
   * The records matching `where`, live: emits at once and after every change. While subscribed
   * (and unless `sync: false`), the (model, where) subset is kept in sync with the server.
   */
  find$(where?: WhereOf<R>, options: FindOptions<R> = {}): Observable<R[]> {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    return this.whenReady(({ ctx, engine }, subscriber) => {
      const release = options.sync !== false ? engine.addSubset(this.model, normalized).release : undefined
      const inner = (
        liveRecords(ctx.db, this.model, normalized.wire, options as FindOptions) as Observable<R[]>
      ).subscribe(subscriber)
      return () => {
        inner.unsubscribe()
        release?.()
      }
    })
  }

  /** How many local records match `where` (no sync): `find(where)`'s length, without reading the rows when there is no where. */
  async count(where?: WhereOf<R>): Promise<number> {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    const { ctx } = await this.host.ready()
    return countRecords(ctx.db, this.model, normalized.wire)
  }

  /**
   * How many records match `where`, live: emits at once and whenever the number changes. While
   * subscribed (and unless `sync: false`), the (model, where) subset is kept in sync with the
   * server, as by `find$`.
   */
  count$(where?: WhereOf<R>, options: Pick<FindOptions<R>, 'sync'> = {}): Observable<number> {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    return this.whenReady(({ ctx, engine }, subscriber) => {
      const release = options.sync !== false ? engine.addSubset(this.model, normalized).release : undefined
      const inner = liveCount(ctx.db, this.model, normalized.wire).subscribe(subscriber)
      return () => {
        inner.unsubscribe()
        release?.()
      }
    })
  }

  /** One record, live (undefined while it does not exist locally). Reads only local data. */
  get$(uid: string): Observable<R | undefined> {
    return this.whenReady(({ ctx }, subscriber) => {
      const inner = (liveRecord(ctx.db, this.model, uid) as Observable<R | undefined>).subscribe(subscriber)
      return () => inner.unsubscribe()
    })
  }

  /**
   * Keeps the (model, where) subset in sync without a query. Returns the function that stops it.
   */
  sync(where?: WhereOf<R>): () => void {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    let release: (() => void) | undefined
    let stopped = false
    this.host.ready().then(
      ({ engine }) => {
        if (!stopped) release = engine.addSubset(this.model, normalized).release
      },
      () => {},
    )
    return () => {
      stopped = true
      release?.()
    }
  }

  /** The sync state of the (model, where) subset; it is kept in sync while this is subscribed. */
  syncState$(where?: WhereOf<R>): Observable<SubsetState> {
    const normalized = normalizeWhere(this.model, where as Record<string, unknown>)
    return this.whenReady(({ engine }, subscriber) => {
      const { subset, release } = engine.addSubset(this.model, normalized)
      const inner = subset.state$.subscribe(subscriber)
      return () => {
        inner.unsubscribe()
        release()
      }
    })
  }

  /** An Observable that starts `start` once the client is ready and tears it down on unsubscribe. */
  private whenReady<V>(
    start: (ready: { ctx: ClientContext; engine: SyncEngine }, subscriber: Subscriber<V>) => () => void,
  ): Observable<V> {
    return new Observable<V>((subscriber) => {
      let stop: (() => void) | undefined
      let stopped = false
      this.host.ready().then(
        (ready) => {
          if (!stopped) stop = start(ready, subscriber)
        },
        (error) => subscriber.error(error),
      )
      return () => {
        stopped = true
        stop?.()
      }
    })
  }
}
