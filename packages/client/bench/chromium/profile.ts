/**
 * Where the time of an initial sync goes in Chromium (issue 16's profile), at BENCH_PROFILE_SIZE
 * records (default 100,000):
 *
 *   npx tsx --conditions=source bench/chromium/profile.ts      (from packages/client)
 *
 * The same set-up as `main.ts` (one page, warmed up), then per case of BENCH_PROFILE_CASES
 * (default `tidesync,tidesyncQuery,dexieBulkPut`):
 * 1. a run without instrumentation (the reference time and its longest tasks);
 * 2. a run under the V8 CPU profiler (DevTools `Profiler`, 250 µs samples): the main thread's
 *    time by part of the code (socket.io + JSON, codec, apply, Dexie + IndexedDB calls, live
 *    queries, GC, idle), mapped back to the source files through the bundle's source map;
 * 3. a run traced (DevTools `Tracing`, every process) for its first BENCH_TRACE_MS (default
 *    5,000 ms; a whole trace of 100,000 records is too big to keep): the main thread's tasks,
 *    what started them and what ran in the longest, and IndexedDB's backend in the browser
 *    process.
 * The profiles and traces are written to BENCH_PROFILE_DIR (default a new folder in the system
 * temp folder; open them in Chrome DevTools' Performance panel), the summary to the
 * `chromium.profile` key of bench/results.json (the rest of the file is kept).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { perSecond, round } from '../lib/stats.js'
import { BenchPage, type Sample } from './bench-page.js'
import { CASE_MODES, parseCases } from './cases.js'
import { analyzeCpuProfile, BundleMap, type CpuProfile } from './cpu-profile.js'
import { startHarness } from './harness.js'
import { analyzeTrace, startTrace, type TraceEvent } from './trace.js'

type Json = Record<string, unknown>

const SIZE = Number(process.env.BENCH_PROFILE_SIZE ?? 100_000)
const CASES = parseCases(process.env.BENCH_PROFILE_CASES ?? 'tidesync,tidesyncQuery,dexieBulkPut')
const TRACE_MS = Number(process.env.BENCH_TRACE_MS ?? 5000)
const WARM = 2000
const resultsFile = fileURLToPath(new URL('../results.json', import.meta.url))
const outDir = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'tidesync-chromium-profiles-'))
const timeoutMs = 60_000 + SIZE * 2

const brief = (sample: Sample) => ({
  ms: Math.round(sample.ms),
  recordsPerSec: perSecond(SIZE, sample.ms),
  longestTaskMs: Math.round(sample.responsiveness.longestTaskMs),
  longTasksOver50ms: sample.responsiveness.longTasks,
  totalBlockingMs: Math.round(sample.responsiveness.totalBlockingMs),
  peakHeapMb: round(sample.peakHeapMb, 1),
  mainThreadCpuMs: Math.round(sample.cpu.mainThreadMs),
  browserAllCpuMs: sample.cpu.browserAllMs === null ? null : Math.round(sample.cpu.browserAllMs),
  cpuMsByProcess: sample.cpu.byProcess,
  ...(sample.tasks
    ? {
        longestTaskCpuMs: Math.round(sample.tasks.longestCpuMs),
        tasksOverCpu50ms: sample.tasks.overCpu50ms,
      }
    : {}),
})

async function main(): Promise<void> {
  mkdirSync(outDir, { recursive: true })
  const loadAtStart = loadavg().map((value) => round(value))
  const sets = [
    { projectId: 'bench-warm', count: WARM },
    { projectId: `bench-${SIZE}`, count: SIZE },
  ]
  console.log(`seeding ${SIZE} records...`)
  const harness = await startHarness(sets, 120_000 + SIZE)
  const bundle = new BundleMap(readFileSync(join(harness.bundle.dir, 'page.js.map'), 'utf8'))
  const profile: Json = {
    records: SIZE,
    date: new Date().toISOString(),
    browser: `Chromium ${harness.browser.version}`,
    server: harness.server.database,
    files: outDir,
    loadAverageAtStart: loadAtStart,
  }
  try {
    const page = await BenchPage.open(harness.browser.context, harness.pageUrl, harness.browser.pid)
    try {
      await page.deleteAllDatabases()
      const warm = { url: harness.server.url, projectId: 'bench-warm', count: WARM }
      const args = { url: harness.server.url, projectId: `bench-${SIZE}`, count: SIZE }
      for (const name of CASES) await page.runCase(CASE_MODES[name], warm, timeoutMs)
      for (const name of CASES) {
        const mode = CASE_MODES[name]
        const entry: Json = {}
        // 1. Reference.
        entry.reference = brief(await page.runCase(mode, args, timeoutMs, { traceTasks: true }))
        console.log(`${name}: reference ${JSON.stringify(entry.reference)}`)
        // 2. CPU profile.
        let cpu: CpuProfile | undefined
        await page.cdp.send('Profiler.enable')
        await page.cdp.send('Profiler.setSamplingInterval', { interval: 250 })
        const profiled = await page.runCase(mode, args, timeoutMs, {
          around: {
            start: async () => {
              await page.cdp.send('Profiler.start')
            },
            stop: async () => {
              cpu = (await page.cdp.send('Profiler.stop')).profile as unknown as CpuProfile
            },
          },
        })
        await page.cdp.send('Profiler.disable')
        writeFileSync(join(outDir, `${name}-${SIZE}.cpuprofile`), JSON.stringify(cpu))
        const breakdown = analyzeCpuProfile(cpu!, bundle)
        entry.cpuProfile = { run: brief(profiled), ...breakdown }
        console.log(`${name}: profiled ${JSON.stringify(brief(profiled))}`)
        // 3. Trace of the first TRACE_MS.
        let events: TraceEvent[] = []
        let stopTrace: Promise<void> | undefined
        const traced = await page.runCase(mode, args, timeoutMs, {
          around: {
            start: async () => {
              const trace = await startTrace(page.cdp)
              stopTrace = new Promise<void>((resolve) => setTimeout(resolve, TRACE_MS)).then(async () => {
                events = await trace.stop()
              })
            },
            stop: async () => {
              await stopTrace
            },
          },
        })
        writeFileSync(join(outDir, `${name}-${SIZE}.trace.json`), JSON.stringify({ traceEvents: events }))
        entry.trace = { run: brief(traced), tracedMs: TRACE_MS, ...analyzeTrace(events) }
        events = []
        console.log(`${name}: traced ${JSON.stringify(brief(traced))}`)
        profile[name] = entry
      }
    } finally {
      await page.close()
    }
  } finally {
    await harness.close()
  }
  profile.loadAverageAtEnd = loadavg().map((value) => round(value))
  print(profile)
  const results = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Json) : {}
  results.chromium = { ...((results.chromium as Json | undefined) ?? {}), profile }
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`\nprofiles and traces in ${outDir}; summary in the chromium.profile key of ${resultsFile}`)
}

function print(profile: Json): void {
  console.log(
    `\nprofile at ${SIZE} records, load ${JSON.stringify(profile.loadAverageAtStart)} -> ${JSON.stringify(profile.loadAverageAtEnd)}`,
  )
  for (const name of CASES) {
    const entry = profile[name] as Json
    const cpu = entry.cpuProfile as ReturnType<typeof analyzeCpuProfile> & { run: Json }
    console.log(`\n== ${name}: reference ${JSON.stringify(entry.reference)}`)
    console.log(`  main thread by part of the code (CPU profile, ${cpu.sampledMs} ms sampled):`)
    for (const s of cpu.byCategory)
      console.log(`    ${(s.share * 100).toFixed(1).padStart(5)}%  ${String(s.ms).padStart(6)} ms  ${s.name}`)
    console.log('  top functions (self):')
    for (const s of cpu.topFunctions.slice(0, 12))
      console.log(`    ${String(s.ms).padStart(6)} ms  ${s.name}`)
    console.log('  natives (self, under their caller):')
    for (const s of cpu.topNatives.slice(0, 8)) console.log(`    ${String(s.ms).padStart(6)} ms  ${s.name}`)
    const trace = entry.trace as Json & ReturnType<typeof analyzeTrace>
    const m = trace.mainThread
    console.log(
      `  trace of the first ${trace.windowMs} ms: main thread ${m.tasks} tasks, busy ${m.busyMs} ms (cpu ${m.cpuMs} ms), ` +
        `${m.tasksOver50ms} over 50 ms; IndexedDB backend ${trace.indexedDbBackend.ms} ms (cpu ${trace.indexedDbBackend.cpuMs} ms)`,
    )
    for (const k of m.kinds) console.log(`    tasks: ${k.count} x ${k.name}: ${k.ms} ms (cpu ${k.cpuMs})`)
    for (const k of m.exclusive.slice(0, 8))
      console.log(`    exclusive: ${k.ms} ms (cpu ${k.cpuMs}) ${k.name} x${k.count}`)
    for (const t of m.longest.slice(0, 5))
      console.log(
        `    long task at ${t.atMs} ms: ${t.ms} ms (cpu ${t.cpuMs}): ${t.inside
          .slice(0, 3)
          .map((p) => `${p.name} x${p.count} ${p.ms} ms`)
          .join(', ')}`,
      )
    for (const k of trace.indexedDbBackend.byEvent.slice(0, 5))
      console.log(`    backend: ${k.ms} ms (cpu ${k.cpuMs}) ${k.name} x${k.count}`)
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
