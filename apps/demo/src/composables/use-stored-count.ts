import { tryOnScopeDispose, useDocumentVisibility, useIntervalFn, useThrottleFn } from '@vueuse/core'
import { type Ref, ref, type WatchSource, watch } from 'vue'

/** Opens an existing IndexedDB database; null when there is none (it is never created here). */
function openExisting(dbName: string): Promise<IDBDatabase | null> {
  return new Promise((resolve) => {
    const request = indexedDB.open(dbName)
    // No such database: abort the creation the open would otherwise do.
    request.onupgradeneeded = () => request.transaction?.abort()
    request.onerror = () => resolve(null)
    request.onsuccess = () => resolve(request.result)
  })
}

/**
 * Counts the records of one IndexedDB object store with `count()`, which reads no records. The
 * connection stays open between counts, and closes at once when another connection wants to
 * upgrade the database (the tidesync client of a newer page); the next count opens it again.
 */
export class StoreCounter {
  private db: Promise<IDBDatabase | null> | null = null

  constructor(
    private readonly dbName: string,
    private readonly store: string,
  ) {}

  /** The number of records, or null when the database or the store does not exist (yet). */
  async count(): Promise<number | null> {
    this.db ??= openExisting(this.dbName).then((db) => {
      if (db)
        db.onversionchange = () => {
          db.close()
          this.db = null
        }
      else this.db = null
      return db
    })
    const db = await this.db
    if (!db?.objectStoreNames.contains(this.store)) return null
    return new Promise((resolve) => {
      try {
        const request = db.transaction(this.store, 'readonly').objectStore(this.store).count()
        request.onsuccess = () => resolve(request.result)
        request.onerror = () => resolve(null)
      } catch {
        // Closed meanwhile (an upgrade): count again next time.
        this.db = null
        resolve(null)
      }
    })
  }

  close(): void {
    void this.db?.then((db) => db?.close())
    this.db = null
  }
}

export interface UseStoredCountOptions {
  /** Resolves once the store exists (the tidesync client opened its database). */
  ready: Promise<unknown>
  /** Count again when one of these changes (at most every `throttleMs`). */
  changes: WatchSource[]
  /** Also count again this often while the page is visible, for changes none of `changes` sees. @default 3000 */
  everyMs?: number
  /** The least time between two counts. @default 250 */
  throttleMs?: number
}

/**
 * How many records an IndexedDB object store holds, kept up to date: counted when the database
 * is ready, again (throttled) when one of `changes` changes, and every `everyMs` while the page
 * is visible. Null until the first count.
 *
 * The notes list uses it for "Notes 10,000" because the tidesync client has no count query: it
 * counts the client's record store (`r_notes`) directly, a store name that is the client's
 * internal layout. With a `collection.count$()` in the client, this goes.
 */
export function useStoredCount(
  dbName: string,
  store: string,
  options: UseStoredCountOptions,
): Ref<number | null> {
  const count = ref<number | null>(null)
  const counter = new StoreCounter(dbName, store)
  let ready = false
  let asked = 0
  let stopped = false

  const recount = async () => {
    if (!ready || stopped) return
    const ticket = ++asked
    const counted = await counter.count()
    // A later count started meanwhile: its answer is the newer one.
    if (ticket === asked && !stopped && counted !== null) count.value = counted
  }
  const recountSoon = useThrottleFn(recount, options.throttleMs ?? 250, true, true)

  options.ready.then(
    () => {
      ready = true
      void recount()
    },
    () => {},
  )
  watch(options.changes, () => void recountSoon())
  const visibility = useDocumentVisibility()
  useIntervalFn(() => {
    if (visibility.value === 'visible') void recountSoon()
  }, options.everyMs ?? 3000)
  tryOnScopeDispose(() => {
    stopped = true
    counter.close()
  })
  return count
}
