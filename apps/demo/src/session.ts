/**
 * What this browser remembers about its person between reloads (localStorage): the display
 * name and whether the "work offline" switch is on, so a reload keeps an offline window offline.
 */
const NAME_KEY = 'tidesync-demo:name'
const OFFLINE_KEY = 'tidesync-demo:offline'

const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Puffin', 'Badger', 'Marten', 'Ibis', 'Wren', 'Seal', 'Hare']

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    return null
  }
}

export function loadName(): string {
  const stored = storage()?.getItem(NAME_KEY)
  if (stored) return stored
  const name = `${ANIMALS[Math.floor(Math.random() * ANIMALS.length)]} ${Math.floor(10 + Math.random() * 90)}`
  saveName(name)
  return name
}

export function saveName(name: string): void {
  storage()?.setItem(NAME_KEY, name)
}

export function loadOfflineSwitch(): boolean {
  return storage()?.getItem(OFFLINE_KEY) === 'true'
}

export function saveOfflineSwitch(offline: boolean): void {
  storage()?.setItem(OFFLINE_KEY, String(offline))
}

const LAST_SYNC_KEY = 'tidesync-demo:last-sync'

/** When this browser last finished a sync (kept so a reload still shows it). */
export function loadLastSync(): Date | null {
  const stored = Number(storage()?.getItem(LAST_SYNC_KEY))
  return Number.isFinite(stored) && stored > 0 ? new Date(stored) : null
}

export function saveLastSync(at: Date): void {
  storage()?.setItem(LAST_SYNC_KEY, String(at.getTime()))
}
