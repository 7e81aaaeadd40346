import { Dexie, type Table } from 'dexie'
import { TidesyncClientError } from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import { ChangeFeed } from './change-feed.js'
import type { CheckpointRow, LockRow, MetaPageRow, MetaRow, OutboxRow, StateRow } from './rows.js'

/** IndexedDB implementation to use (a browser's, or fake-indexeddb in Node). */
export interface IndexedDbDeps {
  indexedDB?: unknown
  IDBKeyRange?: unknown
}

/** The client's Dexie database: per model a records and a meta table, plus the internal tables. */
export interface LocalDb {
  readonly dexie: Dexie
  readonly outbox: Table<OutboxRow, number>
  readonly checkpoints: Table<CheckpointRow, string>
  readonly state: Table<StateRow, string>
  readonly locks: Table<LockRow, string>
  records(model: ModelInfo): Table<Record<string, unknown>, string>
  meta(model: ModelInfo): Table<MetaRow, string>
  /** The metadata pages of records loaded in bulk (see `db/meta-pages.ts`). */
  pages(model: ModelInfo): Table<MetaPageRow, MetaPageRow['key']>
  /**
   * Marks the running transaction as one that adds outbox entries: when it commits, every
   * `onQueued` listener is told, before the transaction's caller goes on.
   */
  markQueued(): void
  /** Listens for commits, in this tab, of transactions that added outbox entries. Returns the function that stops it. */
  onQueued(listener: () => void): () => void
  /** The record tables' committed changes, with their values (live queries follow it). */
  readonly feed: ChangeFeed
  /** Closes the connection. */
  close(): void
}

/** The Dexie store definitions for a set of models. */
export function storeSpec(models: readonly ModelInfo[]): Record<string, string> {
  const spec: Record<string, string> = {
    _outbox: '++seq, &id, [model+uid]',
    _checkpoints: 'key, model',
    _state: 'key',
    _locks: 'name',
  }
  for (const model of models) {
    const compound = model.compoundIndexes.map((columns) => `[${columns.join('+')}]`)
    spec[model.recordsTable] = ['uid', ...model.indexes, ...compound].join(', ')
    spec[model.metaTable] = 'uid'
    spec[model.pagesTable] = 'key'
  }
  return spec
}

function parseSpec(spec: string): { primKey: string; indexes: string[] } {
  const [primKey = '', ...indexes] = spec.split(',').map((part) => part.trim())
  return { primKey, indexes: indexes.filter(Boolean).sort() }
}

/**
 * The version to declare: the installed one when its stores already match, one more when the
 * models or their indexes changed. Why not a fixed number: Dexie would then upgrade by itself
 * and warn on the console; an app adding a model should not have to count versions.
 *
 * The probe opens the database as it exists, on the injected factory. Why not `Dexie.exists()`:
 * it (like `Dexie.delete()`) takes no options and always looks in the global `indexedDB`.
 */
async function resolveVersion(
  name: string,
  spec: Record<string, string>,
  deps: IndexedDbDeps,
): Promise<number> {
  const probe = new Dexie(name, deps as never)
  const opened = await probe.open().then(
    () => true,
    (error: Error) => {
      if (error.name === 'NoSuchDatabaseError') return false
      throw error
    },
  )
  if (!opened) return 1
  try {
    const installed = new Map(probe.tables.map((table) => [table.name, table.schema]))
    const matches = Object.entries(spec).every(([tableName, tableSpec]) => {
      const schema = installed.get(tableName)
      if (!schema) return false
      const wanted = parseSpec(tableSpec)
      const have = schema.indexes.map((index) => index.src).sort()
      return schema.primKey.src === wanted.primKey && JSON.stringify(have) === JSON.stringify(wanted.indexes)
    })
    return matches ? probe.verno : Math.floor(probe.verno) + 1
  } finally {
    probe.close()
  }
}

/**
 * Makes Dexie's live queries run where the platform has no global IndexedDB. Dexie's
 * `liveQuery()` skips every query while `Dexie.dependencies.indexedDB` (the global it found at
 * import) is empty, its guard for server-side rendering, even for a database opened on an
 * injected factory (dexie/Dexie.js#2046): the queries would never emit. So the first injected
 * factory becomes Dexie's default there. Every client still opens its database on its own
 * factory (Dexie uses the default only for a database created without one); where a global
 * IndexedDB exists, nothing changes.
 */
function enableLiveQueries(deps: IndexedDbDeps): void {
  const defaults = Dexie.dependencies as { indexedDB?: unknown; IDBKeyRange?: unknown }
  if (defaults.indexedDB || !deps.indexedDB) return
  defaults.indexedDB = deps.indexedDB
  if (!defaults.IDBKeyRange && deps.IDBKeyRange) defaults.IDBKeyRange = deps.IDBKeyRange
}

/** Opens (creating or upgrading) the client's database. */
export async function openLocalDb(
  name: string,
  models: readonly ModelInfo[],
  deps: IndexedDbDeps,
): Promise<LocalDb> {
  const spec = storeSpec(models)
  enableLiveQueries(deps)
  try {
    const version = await resolveVersion(name, spec, deps)
    const dexie = new Dexie(name, deps as never)
    dexie.version(version).stores(spec)
    const feed = new ChangeFeed(name)
    dexie.use(feed.middleware)
    await dexie.open().catch((error) => {
      feed.close()
      throw error
    })
    const listeners = new Set<() => void>()
    const marked = new WeakSet<object>()
    // Outside any transaction's zone: a listener may start transactions of its own.
    const queued = () =>
      Dexie.ignoreTransaction(() => {
        for (const listener of listeners) listener()
      })
    return {
      dexie,
      feed,
      close() {
        feed.close()
        dexie.close()
      },
      markQueued() {
        const transaction = Dexie.currentTransaction
        if (!transaction) return queued() // an add outside a transaction is committed already
        if (marked.has(transaction)) return
        marked.add(transaction)
        transaction.on('complete', queued)
      },
      onQueued(listener) {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      outbox: dexie.table('_outbox'),
      checkpoints: dexie.table('_checkpoints'),
      state: dexie.table('_state'),
      locks: dexie.table('_locks'),
      records: (model) => dexie.table(model.recordsTable),
      meta: (model) => dexie.table(model.metaTable),
      pages: (model) => dexie.table(model.pagesTable),
    }
  } catch (error) {
    throw new TidesyncClientError(
      'CLIENT_STORAGE',
      `Cannot open the local database '${name}': ${(error as Error).message}`,
      {
        cause: error,
      },
    )
  }
}
