/**
 * The memory store's hash commands. A hash is a Map of field -> stored value, so a field named
 * `__proto__` is an ordinary field; results are built with `safeAssign` for the same reason.
 * @internal
 */
import { safeAssign } from '../../../safe-assign.js'
import type { Json } from '../../../types.js'
import type { MemoryCommands, MemoryStore } from '../memory-store.js'
import { checkedSum, decode, Entry, encode, type Stored } from '../store-values.js'

function hash(store: MemoryStore, key: string, op: string): Map<string, Stored> | undefined {
  return store.typed(key, 'hash', op)?.value as Map<string, Stored> | undefined
}

/** The hash at `key`, created empty when missing. */
function hashFor(store: MemoryStore, key: string, op: string): Map<string, Stored> {
  let fields = hash(store, key, op)
  if (fields === undefined) {
    fields = new Map()
    store.data.set(key, new Entry('hash', fields, 0))
  }
  return fields
}

function hgetall(store: MemoryStore, key: string): Record<string, Json> {
  const result: Record<string, Json> = {}
  const fields = hash(store, key, 'hgetall')
  if (fields) for (const [field, stored] of fields) safeAssign(result, field, decode(stored))
  return result
}

export const hashCommands = {
  hset(store, [key, fields]) {
    const stored = hashFor(store, key, 'hset')
    let added = 0
    for (const field of Object.keys(fields)) {
      if (!stored.has(field)) added++
      stored.set(field, encode(fields[field]!))
    }
    return added
  },

  hget(store, [key, field]) {
    const stored = hash(store, key, 'hget')?.get(field)
    return stored === undefined ? null : decode(stored)
  },

  hgetall: (store, [key]) => hgetall(store, key),

  hmget(store, [key, fields]) {
    const stored = hash(store, key, 'hmget')
    return fields.map((field) => {
      const value = stored?.get(field)
      return value === undefined ? null : decode(value)
    })
  },

  hdel(store, [key, fields]) {
    const stored = hash(store, key, 'hdel')
    if (stored === undefined) return 0
    let removed = 0
    for (const field of fields) if (stored.delete(field)) removed++
    if (stored.size === 0) store.data.delete(key)
    return removed
  },

  hincrBy(store, [key, field, n]) {
    let fields = hash(store, key, 'hincrBy')
    // Checked before the hash is created, so a failing call leaves no empty hash behind.
    const result = checkedSum(fields?.get(field), n, key, field)
    if (fields === undefined) {
      fields = new Map()
      store.data.set(key, new Entry('hash', fields, 0))
    }
    fields.set(field, result)
    return result
  },

  hgetdel(store, [key]) {
    const result = hgetall(store, key)
    store.data.delete(key)
    return result
  },
} satisfies Partial<MemoryCommands>
