import { tryOnScopeDispose } from '@vueuse/core'
import type { Table } from 'drizzle-orm'
import { Subscription } from 'rxjs'
import { computed, type MaybeRefOrGetter, type Ref, type ShallowRef, shallowRef, toValue, watch } from 'vue'
import type { TidesyncClient } from '../../core/client.js'
import type { Collection } from '../../core/collection.js'
import { type TidesyncClientError, toClientError } from '../../core/errors.js'
import type { FindOptions } from '../../core/live/query.js'
import type { SubsetState } from '../../core/sync/subsets.js'
import type { RecordOf, SyncStatus, WhereOf } from '../../core/types.js'
import { useTidesyncClient } from '../context.js'

export interface UseSyncedQueryOptions<R> extends FindOptions<R> {
  /** The client to use. @default the one provided by `TidesyncPlugin` */
  client?: TidesyncClient
  /** `data` until the first local result. @default [] */
  initialData?: R[]
  /**
   * Called with each new error of this query (see `error`): never for another query's failure
   * nor for client-wide errors. @default undefined
   */
  onError?: (error: TidesyncClientError) => void
}

export interface UseSyncedQueryReturn<R> {
  /** The matching records, replaced (not mutated) on every change. */
  data: ShallowRef<R[]>
  /**
   * True until the first local result arrived and, while online, the subset's first sync with
   * the server finished. Offline, local data is all there is: loading ends with it.
   */
  isLoading: Readonly<Ref<boolean>>
  /**
   * This query's own error, or null: its local read failed (a bad `where`, the local database),
   * or the last sync of its subset (model + where) failed; cleared when the subset syncs again
   * or `where` changes. Another query's failure never shows here, nor do client-wide errors
   * (a failed push, a rejected change, a lost connection): those are in `status.value.error`,
   * `useSyncStatus().error` and `client.errors$`.
   */
  error: Readonly<Ref<TidesyncClientError | null>>
  /** The client's sync status (client-wide, the same for every query). */
  status: ShallowRef<SyncStatus>
}

function stableKey(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  )
}

/**
 * Live records of a model from the local store, kept in sync with the server. `where` may be a
 * value, a ref or a getter: when it changes, the query re-subscribes and the new subset syncs.
 * Everything stops when the calling component (or effect scope) is disposed.
 *
 * @example
 * const projectId = ref('p1')
 * const { data: todos, isLoading, error } = useSyncedQuery(todosTable, () => ({ projectId: projectId.value }))
 */
export function useSyncedQuery<T extends Table>(
  model: T,
  where?: MaybeRefOrGetter<WhereOf<RecordOf<T>> | undefined>,
  options?: UseSyncedQueryOptions<RecordOf<T>>,
): UseSyncedQueryReturn<RecordOf<T>>
export function useSyncedQuery<R extends Record<string, unknown> = Record<string, unknown>>(
  model: string,
  where?: MaybeRefOrGetter<WhereOf<R> | undefined>,
  options?: UseSyncedQueryOptions<R>,
): UseSyncedQueryReturn<R>
export function useSyncedQuery(
  model: string | Table,
  where?: MaybeRefOrGetter<Record<string, unknown> | undefined>,
  options: UseSyncedQueryOptions<Record<string, unknown>> = {},
): UseSyncedQueryReturn<Record<string, unknown>> {
  const { client: explicit, initialData, onError, ...findOptions } = options
  const client = useTidesyncClient(explicit)
  // The composable serves any schema, so it looks the collection up untyped.
  const collection = (client.collection as (ref: string | Table) => Collection)(model)
  const data = shallowRef<Record<string, unknown>[]>(initialData ?? [])
  const status = shallowRef<SyncStatus>(client.status)
  const queryError = shallowRef<TidesyncClientError | null>(null)
  const subset = shallowRef<SubsetState | null>(null)
  const hasData = shallowRef(false)

  const isLoading = computed(() => {
    if (queryError.value) return false
    if (!hasData.value) return true
    if (findOptions.sync === false || !status.value.online) return false
    const state = subset.value
    return !state || (!state.synced && state.error === null)
  })
  // Only what this query's own subscriptions report; the client's last error (status.error) is
  // client-wide and would show one query's failure (or a push's) in every query.
  const error = computed(() => queryError.value ?? subset.value?.error ?? null)

  const statusSubscription = client.status$.subscribe((next) => {
    status.value = next
  })
  watch(error, (next) => {
    if (next) onError?.(next)
  })

  let current: Subscription | undefined
  let currentKey: string | undefined
  const stopWatch = watch(
    () => toValue(where),
    (next) => {
      const key = stableKey(next)
      if (key === currentKey) return
      currentKey = key
      current?.unsubscribe()
      current = new Subscription()
      hasData.value = false
      subset.value = null
      queryError.value = null
      const fail = (cause: unknown) => {
        queryError.value = toClientError(cause)
      }
      try {
        current.add(
          collection.find$(next, findOptions).subscribe({
            next: (rows) => {
              data.value = rows
              hasData.value = true
            },
            error: fail,
          }),
        )
        if (findOptions.sync !== false) {
          current.add(
            collection.syncState$(next).subscribe({
              next: (state) => {
                subset.value = state
              },
              error: fail,
            }),
          )
        }
      } catch (cause) {
        fail(cause)
      }
    },
    { immediate: true, deep: true },
  )

  tryOnScopeDispose(() => {
    stopWatch()
    current?.unsubscribe()
    statusSubscription.unsubscribe()
  })

  return { data, isLoading, error, status }
}
