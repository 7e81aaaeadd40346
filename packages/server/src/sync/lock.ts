import { createHash } from 'node:crypto'
import type { Core } from '../core.js'

/**
 * Runs `fn` holding the IPC lock of one model+where+scope, so syncs of the same data never
 * interleave, in this process or any other sharing the IPC store (the seed's per-model+where
 * Mutex, made cross-server).
 */
export function withSyncLock<T>(core: Core, filterKey: string, fn: () => Promise<T>): Promise<T> {
  const digest = createHash('sha1').update(filterKey).digest('hex')
  return core.ipc.withLock(`${core.keyPrefix}sync:${digest}`, core.limits.syncLockTtlSeconds, fn, {
    waitMs: core.limits.syncLockWaitMs,
  })
}
