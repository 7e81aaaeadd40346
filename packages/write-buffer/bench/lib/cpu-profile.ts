import { Session } from 'node:inspector/promises'

/** A V8 CPU profile (what `Profiler.stop` and `node --cpu-prof` give). */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
}

/** Self time (ms) per category and per function of a profile. */
export interface ProfileSummary {
  totalMs: number
  categories: [string, number][]
  functions: [string, number][]
}

/** Samples this process's CPU while `fn` runs (inspector session; 200 µs interval). */
export async function profiled<T>(fn: () => Promise<T>): Promise<{ result: T; profile: CpuProfile }> {
  const session = new Session()
  session.connect()
  try {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
    const result = await fn()
    const { profile } = await session.post('Profiler.stop')
    return { result, profile: profile as unknown as CpuProfile }
  } finally {
    session.disconnect()
  }
}

/**
 * Where a sample's time goes, by the file of the function it is in. The write buffer's folders
 * say which side of it: `store/` encodes and queues the rows (enqueue side, and the flush's
 * reading of them back), `flush/` plans and writes, `db/` streams COPY data.
 */
function category(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC'
  if (name === '(idle)') return 'idle (waiting: database, store, timers)'
  // The inspector serialising the profile at `Profiler.stop` (not the work measured: left out).
  if (name === 'dispatch' && !url) return 'profiler itself'
  if (name === '(program)' || (!url && name !== '(root)')) return 'V8/native (no JS frame)'
  const wb = /write-buffer\/src\/([a-z-]+)\//.exec(url)
  if (wb) return `write-buffer ${wb[1]}/`
  if (/write-buffer\/src\/[a-z-]+\.ts/.test(url)) return 'write-buffer (root files)'
  if (url.includes('write-buffer/bench/')) return 'bench callers'
  if (url.includes('/ipc/src/')) return 'IPC driver (@tidesync/ipc)'
  if (url.includes('node_modules/ioredis') || url.includes('node_modules/redis-parser')) return 'ioredis'
  if (url.includes('node_modules/drizzle-orm')) return 'drizzle-orm'
  if (url.includes('node_modules/pg-copy-streams')) return 'pg-copy-streams'
  if (/node_modules\/pg(-[a-z]+)?\//.test(url)) return 'node-postgres'
  if (url.includes('@electric-sql/pglite') || url.startsWith('wasm://')) return 'PGlite (WASM)'
  if (url.includes('node_modules/lmdb') || url.includes('node_modules/msgpackr')) return 'lmdb'
  if (url.startsWith('node:')) return 'node core'
  return 'other'
}

/** Self time per category and per function, largest first (the profiler's own stop left out). */
export function summarize(profile: CpuProfile, top = 10): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const categories = new Map<string, number>()
  const functions = new Map<string, number>()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number)
    const us = profile.timeDeltas[i] ?? 0
    if (!node) continue
    const { functionName, url, lineNumber } = node.callFrame
    const name = functionName || '(anonymous)'
    const cat = category(url, name)
    if (cat === 'profiler itself') continue
    categories.set(cat, (categories.get(cat) ?? 0) + us / 1000)
    const file = url.replace(/^.*\/(packages|node_modules)\//, '').replace(/^file:\/\//, '')
    const key = url ? `${name} (${file}:${lineNumber + 1})` : name
    functions.set(key, (functions.get(key) ?? 0) + us / 1000)
    total += us / 1000
  }
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  return { totalMs: total, categories: sorted(categories), functions: sorted(functions).slice(0, top) }
}
