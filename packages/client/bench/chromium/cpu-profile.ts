import { SourceMap } from 'node:module'
import { round } from '../lib/stats.js'

/** A V8 CPU profile (DevTools `Profiler.stop`). */
export interface CpuProfile {
  nodes: Array<{
    id: number
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
    children?: number[]
  }>
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a function of the bundle comes from. */
interface Origin {
  /** The source file, relative to the repository (`packages/client/src/core/apply-server.ts`, `node_modules/dexie/...`). */
  file: string
  line: number
  category: string
}

/**
 * What each part of the code base is, for the profile's shares: the socket (socket.io and
 * engine.io, which parse the frames and the JSON), the codec, the client's apply, Dexie (and the
 * IndexedDB calls it makes: their structured clone runs inside them), the live queries, …
 */
export function categoryOf(file: string): string {
  if (
    /node_modules\/(socket\.io-client|engine\.io-client|socket\.io-parser|engine\.io-parser|@socket\.io)\//.test(
      file,
    )
  )
    return 'socket.io + JSON decode'
  if (/src\/core\/(schema\/|sync\/columnar)/.test(file)) return 'codec (columns -> rows)'
  if (/src\/core\/(apply-server|apply-remote|merge|db\/meta-pages|db\/rows)/.test(file))
    return 'apply (chunks, metadata pages)'
  if (/src\/core\/(live\/|db\/change-feed)/.test(file)) return 'live queries + change feed'
  if (/node_modules\/dexie\//.test(file)) return 'Dexie + IndexedDB calls'
  if (/node_modules\/rxjs\//.test(file)) return 'rxjs'
  if (/bench\/chromium\//.test(file)) return 'bench page (monitor, cases)'
  if (/src\/core\/sync\//.test(file)) return 'sync engine (pull loop, transport)'
  if (/src\//.test(file)) return 'client (other)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)
  return pkg ? pkg[1]! : file
}

/** Maps the bundle's positions back to source files (the bundle's source map). */
export class BundleMap {
  private readonly map: SourceMap
  private readonly cache = new Map<string, Origin | null>()

  constructor(sourceMapJson: string) {
    this.map = new SourceMap(JSON.parse(sourceMapJson))
  }

  locate(line: number, column: number): Origin | null {
    const key = `${line}:${column}`
    if (this.cache.has(key)) return this.cache.get(key)!
    const entry = this.map.findEntry(line, column) as { originalSource?: string; originalLine?: number }
    let origin: Origin | null = null
    if (entry.originalSource) {
      // Sources are relative to the bundle's folder: keep the part from the repository down.
      const file = entry.originalSource
        .replace(/^(\.\.\/)+/, '')
        .replace(/^.*?(node_modules\/|packages\/)/, '$1')
      origin = { file, line: (entry.originalLine ?? 0) + 1, category: categoryOf(file) }
    }
    this.cache.set(key, origin)
    return origin
  }
}

export interface Share {
  name: string
  ms: number
  /** Of the sampled time. */
  share: number
}

export interface CpuBreakdown {
  sampledMs: number
  /** Main-thread time by part of the code (natives counted with their JS caller). */
  byCategory: Share[]
  /** The functions with the most self time. */
  topFunctions: Share[]
  /** Native and built-in functions (JSON.parse, IndexedDB calls, …) with the most self time, by caller's category. */
  topNatives: Share[]
}

const SPECIAL: Record<string, string> = {
  '(idle)': 'idle (waiting: socket, IndexedDB)',
  '(garbage collector)': 'GC',
  '(program)': 'program (browser work outside JS)',
  '(root)': 'program (browser work outside JS)',
}

/**
 * Self time per category, per function and per native function. A native or built-in frame (no
 * source) counts for the category of its nearest JS caller: IndexedDB's `put` (with its
 * structured clone) under Dexie, `JSON.parse` under the socket.
 */
export function analyzeCpuProfile(
  profile: CpuProfile,
  bundle: BundleMap,
  bundleUrlEnd = 'page.js',
): CpuBreakdown {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const self = new Map<number, number>()
  const { samples, timeDeltas } = profile
  for (let i = 0; i < samples.length; i++) {
    const ms = (timeDeltas[i + 1] ?? 0) / 1000
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + ms)
  }
  const originOf = (id: number): Origin | null => {
    const { url, lineNumber, columnNumber } = byId.get(id)!.callFrame
    return url.endsWith(bundleUrlEnd) ? bundle.locate(lineNumber, columnNumber) : null
  }
  const callerOrigin = (id: number): Origin | null => {
    for (let at: number | undefined = parent.get(id); at !== undefined; at = parent.get(at)) {
      const origin = originOf(at)
      if (origin) return origin
    }
    return null
  }
  const categories = new Map<string, number>()
  const functions = new Map<string, number>()
  const natives = new Map<string, number>()
  const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms)
  let total = 0
  for (const [id, ms] of self) {
    total += ms
    const { functionName, url } = byId.get(id)!.callFrame
    const special = SPECIAL[functionName]
    if (special && !url) {
      add(categories, special, ms)
      continue
    }
    const origin = originOf(id)
    if (origin) {
      add(categories, origin.category, ms)
      add(functions, `${functionName || '(anonymous)'} ${origin.file}:${origin.line}`, ms)
      continue
    }
    const caller = callerOrigin(id)
    const category = caller?.category ?? (url ? `other script ${url}` : 'program (browser work outside JS)')
    add(categories, category, ms)
    add(natives, `${functionName || '(native)'} [under ${category}]`, ms)
  }
  const top = (map: Map<string, number>, n: number): Share[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: round(ms, 0), share: round(ms / total, 3) }))
  return {
    sampledMs: round(total, 0),
    byCategory: top(categories, 30),
    topFunctions: top(functions, 20),
    topNatives: top(natives, 12),
  }
}

/**
 * Names the source of `fn@page.js:<offset>` (how long-animation-frame entries give a script's
 * place: a character offset in the bundle) as `fn (file:line)`; other text is left as it is.
 */
export function sourceLocator(bundleJs: string, bundle: BundleMap): (place: string) => string {
  const lineStarts = [0]
  for (let i = bundleJs.indexOf('\n'); i >= 0; i = bundleJs.indexOf('\n', i + 1)) lineStarts.push(i + 1)
  return (place) => {
    const match = /^(.*)@page\.js:(\d+)$/.exec(place)
    if (!match) return place
    const offset = Number(match[2])
    let low = 0
    let high = lineStarts.length - 1
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      if (lineStarts[middle]! <= offset) low = middle
      else high = middle - 1
    }
    const origin = bundle.locate(low, offset - lineStarts[low]!)
    return origin ? `${match[1]} (${origin.file}:${origin.line})` : place
  }
}
