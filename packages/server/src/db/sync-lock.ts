import { createHash } from 'node:crypto'
import type { Ipc } from '@tidesync/ipc'

/** What the sync lock needs of the server's context. @internal */
export interface SyncLockOwner {
  ipc: Ipc
  keyPrefix: string
  limits: { syncLockTtlSeconds: number; syncLockWaitMs: number }
}

/**
 * Runs `fn` holding the IPC lock of one model+where+scope, so syncs of the same data never
 * interleave, in this process or any other sharing the IPC store (the seed's per-model+where
 * Mutex, made cross-server).
 */
export function withSyncLock<T>(owner: SyncLockOwner, filterKey: string, fn: () => Promise<T>): Promise<T> {
  const digest = createHash('sha1').update(filterKey).digest('hex')
  return owner.ipc.withLock(`${owner.keyPrefix}sync:${digest}`, owner.limits.syncLockTtlSeconds, fn, {
    waitMs: owner.limits.syncLockWaitMs,
  })
}
