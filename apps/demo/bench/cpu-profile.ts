import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import { round } from './stats.js'

/** A V8 CPU profile, as DevTools' `Profiler.stop` returns it. */
export interface CpuProfile {
  nodes: Array<{
    id: number
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  }>
  samples: number[]
  timeDeltas: number[]
}

/** What a source file of the bundle is part of. */
function categoryOf(file: string): string {
  if (/node_modules\/@vue\/|node_modules\/vue\//.test(file)) return 'Vue (rendering)'
  if (/node_modules\/@vueuse\//.test(file)) return 'VueUse'
  if (
    /node_modules\/(socket\.io-client|engine\.io-client|socket\.io-parser|engine\.io-parser|@socket\.io)\//.test(
      file,
    )
  )
    return 'socket.io (frames, JSON)'
  if (/node_modules\/dexie\//.test(file)) return 'Dexie + IndexedDB calls'
  if (/node_modules\/rxjs\//.test(file)) return 'rxjs'
  if (/packages\/client\/src\/core\/(live\/|db\/change-feed)/.test(file))
    return 'tidesync client: live queries'
  if (/packages\/client\/src\/core\/(schema\/|sync\/columnar)/.test(file))
    return 'tidesync client: decoding pages'
  if (/packages\/client\/src\/core\/(apply-server|apply-remote|merge|db\/)/.test(file))
    return 'tidesync client: storing pages'
  if (/packages\/client\/src\//.test(file)) return 'tidesync client: other'
  if (/packages\/protocol\//.test(file)) return 'tidesync protocol'
  if (/apps\/demo\/src\//.test(file)) return 'demo app'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)
  return pkg ? pkg[1]! : file
}

/**
 * Where the main thread's time went during a profile: self time by part of the code (the app's
 * bundle mapped back to its sources with the build's source map), plus the engine's own
 * categories (`(program)`: the browser's work outside JavaScript: parsing, style, layout, paint,
 * IndexedDB's structured clone...; `(garbage collector)`; `(idle)`: waiting).
 */
export function profileShares(profile: CpuProfile, assetsDir: string): Array<{ part: string; ms: number }> {
  const maps = new Map<string, SourceMap | null>()
  const mapFor = (url: string) => {
    const file = url.split('/').pop() ?? ''
    if (!maps.has(file)) {
      const mapFile = join(assetsDir, `${file}.map`)
      maps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : null)
    }
    return maps.get(file) ?? null
  }
  const partOf = new Map<number, string>()
  for (const node of profile.nodes) {
    const { url, functionName, lineNumber, columnNumber } = node.callFrame
    let part: string
    if (!url) part = functionName.startsWith('(') ? functionName : '(browser, native)'
    else if (/\/assets\/[^/]+\.js$/.test(url)) {
      const source = mapFor(url)?.findEntry(lineNumber, columnNumber) as
        | { originalSource?: string }
        | undefined
      part = source?.originalSource ? categoryOf(source.originalSource) : 'app bundle (unmapped)'
    } else part = url.startsWith('http') ? 'other page scripts' : '(browser, native)'
    partOf.set(node.id, part)
  }
  const totals = new Map<string, number>()
  profile.samples.forEach((id, index) => {
    const part = partOf.get(id) ?? '(unknown)'
    totals.set(part, (totals.get(part) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000)
  })
  return [...totals]
    .map(([part, ms]) => ({ part, ms: round(ms) }))
    .filter((share) => share.ms >= 1)
    .sort((a, b) => b.ms - a.ms)
}

/**
 * The source of a script position that a `long-animation-frame` entry names
 * (`function@file.js:charPosition`): the original file and line, and its part of the code.
 */
export function originOf(source: string, assetsDir: string): string | null {
  const match = /@([^/@]+\.js):(\d+)$/.exec(source)
  if (!match) return null
  const [, file, position] = match
  const code = join(assetsDir, file!)
  const mapFile = `${code}.map`
  if (!existsSync(code) || !existsSync(mapFile)) return null
  const text = readFileSync(code, 'utf8').slice(0, Number(position))
  const line = text.split('\n').length - 1
  const column = text.length - (text.lastIndexOf('\n') + 1)
  const entry = new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))).findEntry(line, column) as {
    originalSource?: string
    originalLine?: number
  }
  if (!entry.originalSource) return null
  const path = entry.originalSource.replace(/^.*?(node_modules\/|packages\/|apps\/)/, '$1')
  return `${categoryOf(entry.originalSource)}: ${path}:${(entry.originalLine ?? 0) + 1}`
}
