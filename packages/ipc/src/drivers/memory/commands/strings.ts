/**
 * The memory store's commands on any key and on string values (counters included), and the
 * take-and-clear commands `getdel` and `move`.
 * @internal
 */
import type { MemoryCommands, MemoryStore } from '../memory-store.js'
import { checkedSum, decode, Entry, encode, type Stored } from '../store-values.js'

function get(store: MemoryStore, key: string) {
  const entry = store.typed(key, 'string', 'get')
  return entry === undefined ? null : decode(entry.value as Stored)
}

export const stringCommands = {
  set(store, [key, value, ttlMs]) {
    const expiresAt = ttlMs === null ? 0 : store.deadline(ttlMs, key, false)
    store.data.set(key, new Entry('string', encode(value), expiresAt))
    return undefined
  },

  get: (store, [key]) => get(store, key),

  del(store, [keys]) {
    let count = 0
    for (const key of keys) {
      if (store.live(key) !== undefined) {
        store.data.delete(key)
        count++
      }
    }
    return count
  },

  expire(store, [key, ttlMs]) {
    const entry = store.live(key)
    if (entry === undefined) return false
    entry.expiresAt = store.deadline(ttlMs, key, false)
    return true
  },

  pttl(store, [key]) {
    const entry = store.live(key)
    if (entry === undefined) return -2
    return entry.expiresAt === 0 ? -1 : entry.expiresAt - store.now()
  },

  type: (store, [key]) => store.live(key)?.type ?? null,

  keys(store, [prefix]) {
    const now = store.now()
    const keys: string[] = []
    for (const [key, entry] of store.data) {
      if (key.startsWith(prefix) && (entry.expiresAt === 0 || entry.expiresAt > now)) keys.push(key)
    }
    return keys
  },

  incrBy(store, [key, n]) {
    const entry = store.typed(key, 'string', 'incrBy')
    const result = checkedSum(entry?.value as Stored | undefined, n, key)
    if (entry === undefined) store.data.set(key, new Entry('string', result, 0))
    else entry.value = result
    return result
  },

  getdel(store, [key]) {
    const value = get(store, key)
    store.data.delete(key)
    return value
  },

  move(store, [source, destination]) {
    const entry = store.live(source)
    if (entry === undefined || store.live(destination) !== undefined) return false
    store.data.delete(source)
    store.put(destination, entry)
    return true
  },
} satisfies Partial<MemoryCommands>
