/**
 * The memory store's checkpoint commands: `dump` copies a key range out as `IpcEntry`s (one
 * synchronous pass, hence a consistent snapshot), `restore` writes entries back.
 * @internal
 */
import { safeAssign } from '../../../safe-assign.js'
import type { IpcEntry, Json } from '../../../types.js'
import type { MemoryCommands } from '../memory-store.js'
import { decode, Entry, type EntryValue, encode, type Stored } from '../store-values.js'

/** One stored key as an `IpcEntry` (fresh copies: the caller may change them). */
function toIpcEntry(key: string, entry: Entry): IpcEntry {
  const expiry = entry.expiresAt === 0 ? {} : { expiresAt: entry.expiresAt }
  switch (entry.type) {
    case 'string':
      return { key, type: 'string', value: decode(entry.value as Stored), ...expiry }
    case 'hash': {
      const value: Record<string, Json> = {}
      for (const [field, stored] of entry.value as Map<string, Stored>)
        safeAssign(value, field, decode(stored))
      return { key, type: 'hash', value, ...expiry }
    }
    case 'list':
      return { key, type: 'list', value: (entry.value as Stored[]).map(decode), ...expiry }
    case 'set':
      return { key, type: 'set', value: [...(entry.value as Set<string>)], ...expiry }
  }
}

/** What an `IpcEntry` stores, and how many elements it has (0: the key must not exist). */
function fromIpcEntry(entry: IpcEntry): { value: EntryValue; size: number } {
  switch (entry.type) {
    case 'string':
      return { value: encode(entry.value), size: 1 }
    case 'hash': {
      const hash = new Map<string, Stored>()
      for (const field of Object.keys(entry.value)) hash.set(field, encode(entry.value[field]!))
      return { value: hash, size: hash.size }
    }
    case 'list':
      return { value: entry.value.map(encode), size: entry.value.length }
    case 'set': {
      const set = new Set(entry.value)
      return { value: set, size: set.size }
    }
  }
}

export const checkpointCommands = {
  dump(store, [prefix]) {
    const now = store.now()
    const entries: IpcEntry[] = []
    for (const [key, entry] of store.data) {
      if (!key.startsWith(prefix) || (entry.expiresAt !== 0 && entry.expiresAt <= now)) continue
      entries.push(toIpcEntry(key, entry))
    }
    return entries
  },

  restore(store, [entries]) {
    const now = store.now()
    for (const entry of entries) {
      const expiresAt = entry.expiresAt ?? 0
      if (expiresAt !== 0 && expiresAt <= now) continue
      const { value, size } = fromIpcEntry(entry)
      // Redis holds no empty hash/list/set: an empty one means the key does not exist.
      if (size === 0) store.data.delete(entry.key)
      else store.put(entry.key, new Entry(entry.type, value, expiresAt))
    }
    return undefined
  },
} satisfies Partial<MemoryCommands>
