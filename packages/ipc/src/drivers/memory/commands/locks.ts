/**
 * The memory store's lock commands, in their own namespace (`store.locks`): `lock` sets if
 * absent; `unlock` and `extendLock` act only when the stored owner token equals the caller's.
 * @internal
 */
import type { MemoryCommands } from '../memory-store.js'

export const lockCommands = {
  lock(store, [key, token, ttlMs]) {
    if (store.liveLock(key) !== undefined) return false
    store.locks.set(key, { token, expiresAt: store.deadline(ttlMs, key, true) })
    return true
  },

  unlock(store, [key, token]) {
    if (store.liveLock(key)?.token !== token) return false
    store.locks.delete(key)
    return true
  },

  extendLock(store, [key, token, ttlMs]) {
    const lock = store.liveLock(key)
    if (lock?.token !== token) return false
    lock.expiresAt = store.deadline(ttlMs, key, true)
    return true
  },
} satisfies Partial<MemoryCommands>
