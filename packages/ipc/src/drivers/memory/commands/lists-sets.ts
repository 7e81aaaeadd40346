/**
 * The memory store's list and set commands. Lists follow Redis's index rules (negative indexes
 * count from the end); an emptied list or set is deleted, as Redis holds no empty ones.
 * @internal
 */
import type { Json } from '../../../types.js'
import type { MemoryCommands, MemoryStore } from '../memory-store.js'
import { decode, Entry, encode, range, type Stored } from '../store-values.js'

function list(store: MemoryStore, key: string, op: string): Stored[] | undefined {
  return store.typed(key, 'list', op)?.value as Stored[] | undefined
}

function members(store: MemoryStore, key: string, op: string): Set<string> | undefined {
  return store.typed(key, 'set', op)?.value as Set<string> | undefined
}

export const listCommands = {
  rpush(store, [key, items]) {
    let stored = list(store, key, 'rpush')
    if (stored === undefined) {
      stored = []
      store.data.set(key, new Entry('list', stored, 0))
    }
    for (const item of items) stored.push(encode(item))
    return stored.length
  },

  lrange(store, [key, start, stop]) {
    const stored = list(store, key, 'lrange')
    if (stored === undefined) return []
    const bounds = range(stored.length, start, stop)
    if (bounds === null) return []
    const result: Json[] = []
    for (let i = bounds[0]; i <= bounds[1]; i++) result.push(decode(stored[i]!))
    return result
  },

  llen: (store, [key]) => list(store, key, 'llen')?.length ?? 0,

  ltrim(store, [key, start, stop]) {
    const entry = store.typed(key, 'list', 'ltrim')
    if (entry === undefined) return undefined
    const stored = entry.value as Stored[]
    const bounds = range(stored.length, start, stop)
    if (bounds === null) store.data.delete(key)
    else entry.value = stored.slice(bounds[0], bounds[1] + 1)
    return undefined
  },
} satisfies Partial<MemoryCommands>

export const setCommands = {
  sadd(store, [key, added]) {
    let set = members(store, key, 'sadd')
    if (set === undefined) {
      set = new Set()
      store.data.set(key, new Entry('set', set, 0))
    }
    const before = set.size
    for (const member of added) set.add(member)
    return set.size - before
  },

  srem(store, [key, removed]) {
    const set = members(store, key, 'srem')
    if (set === undefined) return 0
    let count = 0
    for (const member of removed) if (set.delete(member)) count++
    if (set.size === 0) store.data.delete(key)
    return count
  },

  smembers(store, [key]) {
    const set = members(store, key, 'smembers')
    return set === undefined ? [] : [...set]
  },

  sismember: (store, [key, member]) => members(store, key, 'sismember')?.has(member) ?? false,

  scard: (store, [key]) => members(store, key, 'scard')?.size ?? 0,
} satisfies Partial<MemoryCommands>
