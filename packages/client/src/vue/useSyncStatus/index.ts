import { tryOnScopeDispose } from '@vueuse/core'
import { type ComputedRef, computed, type ShallowRef, shallowRef } from 'vue'
import type { TidesyncClient } from '../../core/client.js'
import type { TidesyncClientError } from '../../core/errors.js'
import type { SyncProgress, SyncStatus } from '../../core/types.js'
import { useTidesyncClient } from '../context.js'

export interface UseSyncStatusOptions {
  /** The client to use. @default the one provided by `TidesyncPlugin` */
  client?: TidesyncClient
}

export interface UseSyncStatusReturn {
  /** The whole status, replaced on every change. */
  status: ShallowRef<SyncStatus>
  online: ComputedRef<boolean>
  syncing: ComputedRef<boolean>
  pending: ComputedRef<number>
  progress: ComputedRef<SyncProgress | null>
  lastSyncedAt: ComputedRef<Date | null>
  /**
   * The client's last error (`status.error`), client-wide: a failed push or sync, a rejected
   * change, a timeout; cleared by the next successful sync. A query's own error is
   * `useSyncedQuery().error`.
   */
  error: ComputedRef<TidesyncClientError | null>
  /** The app's online/offline switch. */
  goOnline: () => void
  goOffline: () => void
}

/**
 * The client's connection and sync state as refs, plus the online/offline switch.
 *
 * @example
 * const { online, pending, progress, goOffline, goOnline } = useSyncStatus()
 */
export function useSyncStatus(options: UseSyncStatusOptions = {}): UseSyncStatusReturn {
  const client = useTidesyncClient(options.client)
  const status = shallowRef<SyncStatus>(client.status)
  const subscription = client.status$.subscribe((next) => {
    status.value = next
  })
  tryOnScopeDispose(() => subscription.unsubscribe())
  return {
    status,
    online: computed(() => status.value.online),
    syncing: computed(() => status.value.syncing),
    pending: computed(() => status.value.pending),
    progress: computed(() => status.value.progress),
    lastSyncedAt: computed(() => status.value.lastSyncedAt),
    error: computed(() => status.value.error),
    goOnline: () => client.goOnline(),
    goOffline: () => client.goOffline(),
  }
}
