import { HybridClock, randomNodeId } from '@tidesync/protocol'
import type { Table } from 'drizzle-orm'
import { type Observable, Subject } from 'rxjs'
import { io, type ManagerOptions, type SocketOptions } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { Collection } from './collection.js'
import { type ClientContext, findModel, HLC_STATE_KEY } from './context.js'
import { type IndexedDbDeps, type LocalDb, openLocalDb } from './db/database.js'
import { type CrossTabLock, DexieLeaseLock, type LeaseOptions, WebLocksLock, webLocks } from './db/lock.js'
import { defaultLogger, systemClock, systemTimers } from './env.js'
import { TidesyncClientError, toClientError } from './errors.js'
import { repairMetadata } from './integrity.js'
import { type ModelInfo, readSchema } from './schema/model.js'
import { StatusStore } from './status.js'
import type { BackoffOptions } from './sync/backoff.js'
import { loadLastSyncedAt } from './sync/last-synced.js'
import { SyncEngine } from './sync/sync-engine.js'
import type { TidesyncSocket } from './sync/transport.js'
import type { Clock, Logger, ModelName, ModelOptions, Schema, SyncStatus, Timers } from './types.js'

/** Options of `createClient`. */
export interface ClientOptions<S extends Schema = Schema> {
  /** The server's URL; the client makes its own socket.io connection. Give this or `socket`. */
  url?: string
  /** A socket.io-client socket the app made (and closes). Give this or `url`. */
  socket?: TidesyncSocket
  /** Extra socket.io-client options when the client makes the socket. @default {} */
  socketOptions?: Partial<ManagerOptions & SocketOptions>
  /** The drizzle tables, keyed by model name (`import * as schema from './schema'`). */
  schema: S
  /** Per-model options: wire name, counter columns, local indexes. @default {} */
  models?: { [K in ModelName<S>]?: ModelOptions }
  /** The IndexedDB database name. Tabs that share it share the data and the outbox. */
  dbName: string
  /** Credentials for the server's `authenticate(handshake)` hook (socket.io `auth`). @default undefined */
  auth?: Record<string, unknown> | ((cb: (data: object) => void) => void)
  /** The client's id on the server (dedupes pushes). @default a UUIDv7 made once and stored in the database */
  clientId?: string
  /** Start connected. @default true */
  online?: boolean
  /**
   * Where to log. Messages come without a prefix.
   * @default `defaultLogger`: warnings and errors to the console, prefixed `[tidesync/client]`
   */
  logger?: Logger
  /** The wall clock. @default Date.now */
  clock?: Clock
  /** Timers for timeouts, backoff and lock leases. @default the global setTimeout/clearTimeout */
  timers?: Timers
  /**
   * The IndexedDB implementation (an `IDBFactory`): the client opens its database there, so two
   * clients on two factories keep separate databases even under the same `dbName`.
   * @default the global `indexedDB`
   */
  indexedDB?: unknown
  /** The IDBKeyRange implementation that goes with `indexedDB`. @default the global `IDBKeyRange` */
  IDBKeyRange?: unknown
  /**
   * How long to wait for an answer from the server; a request without an answer by then fails
   * with `CLIENT_TIMEOUT`. A push gets this plus `pushTimeoutPerChangeMs` per change, and is not
   * abandoned when that passes (see `pushTimeoutPerChangeMs`).
   * @default 15000
   */
  requestTimeoutMs?: number
  /**
   * What each change of a push adds to its timeout: a push of `n` changes times out after
   * `requestTimeoutMs + n * pushTimeoutPerChangeMs`. A push that outlives it is reported
   * (`CLIENT_PUSH_TIMEOUT`, a `TidesyncPushTimeoutError`) but kept open: its changes are not sent
   * again on this connection (another copy would only double the work of a slow server), its
   * late answer is applied, and only a dropped connection ends it.
   * @default 20
   */
  pushTimeoutPerChangeMs?: number
  /** Records per pull page (a positive integer). @default 1000 */
  pageSize?: number
  /**
   * Records in the first page of every pull (a positive integer, at most `pageSize`): a screen
   * over the subset shows once that page is stored, without waiting for a full page.
   * @default 100
   */
  firstPageSize?: number
  /** Records per IndexedDB transaction when applying server data. @default 1000 */
  chunkSize?: number
  /**
   * The most changes per push. The batch adapts to the server: after a push whose answer took
   * more than half of its timeout the next batch is halved (down to 25), after a full batch
   * answered within a quarter of its timeout it doubles again (up to this).
   * @default 500
   */
  pushBatchSize?: number
  /** Backoff between failed sync attempts. @default { minDelayMs: 500, maxDelayMs: 30000 } */
  retry?: BackoffOptions
  /**
   * The cross-tab push lock: `'auto'` uses Web Locks when present, else a lease in the database.
   * @default 'auto'
   */
  lock?: 'auto' | 'web-locks' | 'lease'
  /** The lease fallback's timing. @default { leaseMs: 10000, retryMs: 50 } */
  lease?: LeaseOptions
}

interface Ready {
  ctx: ClientContext
  engine: SyncEngine
}

/** The typed collections of a schema. */
export type Collections<S extends Schema> = {
  [K in ModelName<S>]: S[K] extends Table ? Collection<S[K]> : never
}

/**
 * A tidesync client: the local store, its collections and the sync engine. Made by
 * `createClient`; usable at once (calls wait until the local database is open).
 */
export class TidesyncClient<S extends Schema = Schema> {
  /** Connection and sync state. */
  readonly status$: Observable<SyncStatus>
  /** Every error the client reports (server answers, rejected changes, timeouts, storage). */
  readonly errors$: Observable<TidesyncClientError>
  /** The collections by model name. */
  readonly collections: Collections<S>
  private readonly models: ModelInfo[]
  private readonly statusStore = new StatusStore()
  private readonly errorSubject = new Subject<TidesyncClientError>()
  private readonly readyPromise: Promise<Ready>
  private readonly teardown: Array<() => void> = []
  private closed = false
  private db: LocalDb | undefined
  private engineRef: SyncEngine | undefined

  constructor(private readonly options: ClientOptions<S>) {
    if (!options.url && !options.socket)
      throw new TidesyncClientError('CLIENT_CONFIG', 'createClient needs `url` or `socket`')
    if (!options.dbName) throw new TidesyncClientError('CLIENT_CONFIG', 'createClient needs `dbName`')
    for (const key of ['pageSize', 'firstPageSize'] as const) {
      const value = options[key]
      if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
        throw new TidesyncClientError(
          'CLIENT_CONFIG',
          `createClient: \`${key}\` must be a positive integer (records per pull page), got ${String(value)}`,
        )
      }
    }
    this.models = readSchema(options.schema, (options.models ?? {}) as Record<string, ModelOptions>)
    this.status$ = this.statusStore.status$
    this.errors$ = this.errorSubject.asObservable()
    const host = { ready: () => this.whenOpen() }
    this.collections = Object.fromEntries(
      this.models.map((model) => [model.key, new Collection(host, model)]),
    ) as Collections<S>
    this.readyPromise = this.init()
    this.readyPromise.catch((error) => {
      const clientError = toClientError(error)
      this.statusStore.patch({ error: clientError })
      this.errorSubject.next(clientError)
    })
  }

  /** The ready state for a call: rejects with CLIENT_CLOSED once `close()` was called. */
  private whenOpen(): Promise<Ready> {
    if (this.closed) return Promise.reject(new TidesyncClientError('CLIENT_CLOSED', 'The client was closed'))
    return this.readyPromise
  }

  /** Resolves when the local database is open and the sync engine runs. */
  get ready(): Promise<void> {
    return this.readyPromise.then(() => undefined)
  }

  /** The current status. */
  get status(): SyncStatus {
    return this.statusStore.value
  }

  /** A collection by model name or drizzle table. */
  collection<K extends ModelName<S>>(name: K): Collections<S>[K]
  collection<T extends Table>(table: T): Collection<T>
  collection(ref: string | Table): Collection {
    const model = findModel(this.models, ref)
    if (!model)
      throw new TidesyncClientError('CLIENT_UNKNOWN_MODEL', `The schema has no model ${String(ref)}`)
    return (this.collections as Record<string, Collection>)[model.key]!
  }

  /** Connects (again) and syncs. */
  goOnline(): void {
    this.readyPromise.then(
      ({ engine }) => engine.goOnline(),
      () => {},
    )
  }

  /** Disconnects and stays offline; writes keep working locally and queue. */
  goOffline(): void {
    if (this.engineRef) this.engineRef.goOffline()
    else
      this.readyPromise.then(
        ({ engine }) => engine.goOffline(),
        () => {},
      )
  }

  /**
   * Pushes and syncs every active subset now; rejects when offline, when the connection is lost
   * (or `goOffline()` is called) before the sync finished (`CLIENT_OFFLINE`), or when the sync fails.
   */
  async syncNow(): Promise<void> {
    const { engine } = await this.whenOpen()
    await engine.syncNow()
  }

  /** The subsets kept in sync right now (one per distinct (model, where) being watched). */
  async activeSubsets(): Promise<Array<{ model: string; where: Record<string, unknown>; watchers: number }>> {
    const { engine } = await this.readyPromise
    return engine.subsets
      .all()
      .map((subset) => ({ model: subset.model.key, where: subset.where.wire, watchers: subset.refs }))
  }

  /** The client id the server knows this database by. */
  async clientId(): Promise<string> {
    return (await this.readyPromise).ctx.clientId
  }

  /** Stops syncing, disconnects (if the client made the socket) and closes the local database. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.readyPromise
    } catch {
      // Opening failed: nothing more to close.
    }
    for (const stop of this.teardown.splice(0)) stop()
    this.engineRef?.close()
    this.db?.close()
    this.statusStore.complete()
    this.errorSubject.complete()
  }

  private async init(): Promise<Ready> {
    const options = this.options
    const logger = options.logger ?? defaultLogger
    const clock = options.clock ?? systemClock
    const timers = options.timers ?? systemTimers
    const deps: IndexedDbDeps = {}
    if (options.indexedDB) deps.indexedDB = options.indexedDB
    if (options.IDBKeyRange) deps.IDBKeyRange = options.IDBKeyRange
    const db = await openLocalDb(options.dbName, this.models, deps)
    this.db = db
    const clientId = options.clientId ?? (await storedClientId(db))
    const hlc = new HybridClock(randomNodeId(), () => clock.now())
    const storedClock = await db.state.get(HLC_STATE_KEY)
    if (typeof storedClock?.value === 'string') hlc.observe(storedClock.value)
    const ctx: ClientContext = {
      db,
      models: this.models,
      hlc,
      clock,
      timers,
      logger,
      clientId,
      chunkSize: options.chunkSize ?? 1000,
    }
    await repairMetadata(ctx)
    // The last complete sync of an earlier session: shown at once, before any sync (or offline).
    const lastSyncedAt = await loadLastSyncedAt(db)
    if (lastSyncedAt && !this.statusStore.value.lastSyncedAt) this.statusStore.patch({ lastSyncedAt })
    const socket =
      options.socket ??
      (io(options.url!, {
        autoConnect: false,
        auth: options.auth,
        ...options.socketOptions,
      }) as TidesyncSocket)
    const engine = new SyncEngine(ctx, this.makeLock(db, clock, timers), this.statusStore, {
      socket,
      ownsSocket: !options.socket,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      pageSize: options.pageSize ?? 1000,
      firstPageSize: options.firstPageSize ?? 100,
      pushBatchSize: options.pushBatchSize ?? 500,
      pushTimeoutPerChangeMs: options.pushTimeoutPerChangeMs ?? 20,
      retry: options.retry ?? {},
      online: (options.online ?? true) && !this.closed,
    })
    this.engineRef = engine
    const errors = engine.errors$.subscribe((error) => this.errorSubject.next(error))
    this.teardown.push(() => errors.unsubscribe())
    if (this.closed) engine.close()
    else engine.start()
    return { ctx, engine }
  }

  private makeLock(db: LocalDb, clock: Clock, timers: Timers): CrossTabLock {
    const mode = this.options.lock ?? 'auto'
    const locks = webLocks()
    if (mode === 'web-locks' && !locks)
      throw new TidesyncClientError('CLIENT_CONFIG', 'lock: "web-locks" but navigator.locks is missing')
    if (locks && mode !== 'lease') return new WebLocksLock(locks, `tidesync:${this.options.dbName}`)
    return new DexieLeaseLock(db, uuidv7(), clock, timers, this.options.lease)
  }
}

async function storedClientId(db: LocalDb): Promise<string> {
  return db.dexie.transaction('rw', db.state, async () => {
    const stored = await db.state.get('clientId')
    if (typeof stored?.value === 'string') return stored.value
    const id = uuidv7()
    await db.state.put({ key: 'clientId', value: id })
    return id
  })
}

/**
 * Creates a client: opens the local database, connects and keeps the active subsets in sync.
 *
 * @example
 * import * as schema from './schema'
 * const client = createClient({ url: 'https://api.example.com', schema, dbName: 'my-app' })
 * const todos = client.collection('todos')
 * await todos.create({ title: 'Buy milk', done: false })
 */
export function createClient<S extends Schema>(options: ClientOptions<S>): TidesyncClient<S> {
  return new TidesyncClient(options)
}
