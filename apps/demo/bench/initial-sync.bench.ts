/**
 * Benchmark: the demo page opened by a new user while the server holds 10,000 notes.
 *
 * The demo server (PGlite in memory, memory IPC) starts with 10,000 notes already in the
 * database. For each run, a fresh browser context (empty IndexedDB, no service worker) opens the
 * page, and from navigation (`performance.now()` in the page: ms since the navigation started):
 *
 * - **first screen**: the first note cards are on the page and painted (the frame after they
 *   entered the DOM). Goal: within 1 s.
 * - **initial sync done**: the page says Online (not syncing), nothing pending, no progress bar,
 *   and counts 10,000 notes; IndexedDB then holds all 10,000.
 * - **longest main-thread task while loading** (PerformanceObserver `longtask`, from navigation
 *   until the sync is done; the browser reports only tasks over 50 ms, so 0 means none), with
 *   the longest animation frames and the scripts in them (`long-animation-frame`).
 * - **scrolling**: then the notes list is scrolled from top to bottom, `BENCH_SCROLL_STEP` pixels
 *   (default 400: two rows of cards, 24,000 px/s, faster than a fling) per animation frame,
 *   through all 10,000 notes; the longest frame (time between two animation frames) and the frames over
 *   50 ms, including the frames spent at the bottom of what is loaded while the next notes are
 *   read.
 * - a **timeline** of the run: navigation timing and the app's own marks (`demo:*`, see
 *   src/perf-marks.ts), and the server's answer times (the demo's request trace), so a slow
 *   first screen can be explained.
 *
 * Each figure is reported as the median of the runs (`BENCH_RUNS`, default 3) with its min and max,
 * with the machine's load average at the start of each run (the figures are wall-clock times: a
 * busy machine makes them longer). One more run, not counted, is profiled (V8's sampling CPU
 * profiler through the DevTools protocol): the main thread's time until the first screen and
 * from there until the sync is done, by part of the code (`profile`); `BENCH_PROFILE_OUT=<dir>`
 * also writes the two profiles there (`.cpuprofile`, for DevTools' Performance panel), with the
 * built app's scripts and source maps (`assets/`).
 *
 * Run: npm run bench -w @tidesync/demo. Writes apps/demo/bench/results.json, keeping the figure
 * of the earlier benchmark (from navigation until every note was rendered) under `earlier`.
 * Needs an installed Chromium or Chrome, found as the browser tests find it (`CHROMIUM_PATH`,
 * then the usual places).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '@tidesync/server'
import type { Browser, Page } from 'playwright-core'
import { build } from 'vite'
import { launchBrowser, screenshot } from '../e2e/helpers/browser.js'
import { findBrowser, HOW_TO_GET_A_BROWSER } from '../e2e/helpers/find-browser.js'
import { startDemoServer } from '../server/demo-server.js'
import { seedNotes } from '../server/seed.js'
import { type CpuProfile, originOf, profileShares } from './cpu-profile.js'
import { round, spread } from './stats.js'

const RECORDS = Number(process.env.BENCH_NOTES ?? 10_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SCROLL_STEP = Number(process.env.BENCH_SCROLL_STEP ?? 400)
/** Where to also write the profiled run's two profiles (`.cpuprofile`: DevTools opens them). */
const PROFILE_OUT = process.env.BENCH_PROFILE_OUT
const FIRST_SCREEN_GOAL_MS = 1000
const demoRoot = fileURLToPath(new URL('..', import.meta.url))
const resultsFile = join(demoRoot, 'bench', 'results.json')
const probeScript = join(demoRoot, 'bench', 'page-probe.js')

/** What bench/page-probe.js keeps in the page (`window.__demoBench`). */
interface Probe {
  firstNoteInDom: number | null
  firstNotePainted: number | null
  syncDone: number | null
  longTasks: Array<{ at: number; ms: number }>
  longFrames: LongFrame[]
  longTaskSupported: boolean
  scrollThrough(step: number, timeoutMs: number): Promise<ScrollResult | null>
}

interface LongFrame {
  at: number
  ms: number
  blockingMs: number
  scripts: Array<{ invoker: string; source: string; ms: number }>
}

interface ScrollResult {
  ms: number
  frames: number
  longestFrameMs: number
  p95FrameMs: number
  p99FrameMs: number
  medianFrameMs: number
  framesOver50: number
  waitingFrames: number
  longestTaskMs: number
  longTasks: number
  longFrames: LongFrame[]
  scrolledPx: number
  cardsInDom: number
  lastTitle: string | null
  timedOut: boolean
}

declare global {
  interface Window {
    __demoBench: Probe
  }
}

/** One server request as the demo's trace logged it, with when its answer left (ms after navigation). */
interface TracedRequest {
  event: string
  answeredAt: number
  ms: number
}

/** The trace's lines (`socket <server>:<socket> <event>: ok in <n> ms`) go here during a run. */
const traced: TracedRequest[] = []
let runStarted = 0
const quiet: Logger = {
  debug() {},
  info(message: string) {
    const match = /\s(\S+): (?:ok|error \S+) in (\d+) ms$/.exec(message)
    if (match)
      traced.push({
        event: match[1]!,
        answeredAt: round(performance.now() - runStarted),
        ms: Number(match[2]),
      })
  },
  warn: (message: string, ...meta: unknown[]) => console.warn(message, ...meta),
  error: (message: string, ...meta: unknown[]) => console.error(message, ...meta),
}

async function buildApp(outDir: string): Promise<void> {
  const nodeEnv = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await build({
      root: demoRoot,
      configFile: join(demoRoot, 'vite.config.ts'),
      mode: 'production',
      logLevel: 'warn',
      // Source maps, to name the code in the profile and the long frames (the app is the same).
      build: { outDir, emptyOutDir: true, sourcemap: true },
    })
  } finally {
    process.env.NODE_ENV = nodeEnv
  }
}

function storedNotes(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const request = indexedDB.open('tidesync-demo')
        request.onerror = () => reject(request.error)
        request.onsuccess = () => {
          const count = request.result.transaction('r_notes').objectStore('r_notes').count()
          count.onsuccess = () => {
            request.result.close()
            resolve(count.result)
          }
          count.onerror = () => reject(count.error)
        }
      }),
  )
}

/** Navigation timing and the app's `demo:*` marks, in ms after navigation. */
function timelineOf(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const points: Record<string, number> = {}
    const navigation = performance.getEntriesByType('navigation')[0] as
      | PerformanceNavigationTiming
      | undefined
    if (navigation) {
      points['html received'] = navigation.responseEnd
      points['DOM content loaded'] = navigation.domContentLoadedEventEnd
      points['load event'] = navigation.loadEventEnd
    }
    for (const entry of performance.getEntriesByType('resource') as PerformanceResourceTiming[]) {
      if (/\/assets\/.*\.js$/.test(entry.name))
        points[`script ${entry.name.split('/').pop()} received`] = entry.responseEnd
    }
    for (const mark of performance.getEntriesByType('mark')) {
      if (mark.name.startsWith('demo:')) points[mark.name] = mark.startTime
    }
    for (const key of Object.keys(points)) points[key] = Math.round(points[key]! * 10) / 10
    return points
  })
}

/** The previous results' figure of the earlier benchmark (every note rendered), kept as is. */
function earlierFigure(): unknown {
  if (!existsSync(resultsFile)) return undefined
  const previous = JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>
  if (previous.earlier) return previous.earlier
  if (typeof previous.medianMs !== 'number') return undefined
  const setup = previous.setup as { date?: string; browser?: string } | undefined
  return {
    measured: previous.measured,
    medianMs: previous.medianMs,
    medianRecordsPerSecond: previous.medianRecordsPerSecond,
    runsMs: (previous.runs as Array<{ ms: number }>).map((run) => run.ms),
    browser: setup?.browser,
    date: setup?.date,
    note: 'the page then rendered every note it held (60 at a time, behind a "Show more" button) from one query of all notes',
  }
}

/** A fresh browser context (empty IndexedDB, no service worker) with the probe, and its page. */
async function freshPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, locale: 'en-GB' })
  await context.addInitScript(() => localStorage.setItem('tidesync-demo:name', 'Bench'))
  await context.addInitScript({ path: probeScript })
  return context.newPage()
}

/** Waits until the page has synced every note (see the header), and notes when in the page. */
async function waitSynced(page: Page): Promise<void> {
  await page.waitForFunction(
    // No named helpers in here: tsx would wrap them in a `__name` call the page does not know.
    (expected) => {
      const done =
        ['note-count', 'pending-count', 'connection-state']
          .map((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim())
          .join('|') === `${expected}|0|Online` && !document.querySelector('[data-testid="sync-progress"]')
      if (done && window.__demoBench.syncDone === null) window.__demoBench.syncDone = performance.now()
      return done
    },
    RECORDS.toLocaleString('en'),
    { polling: 20, timeout: 180_000 },
  )
}

/**
 * One more fresh page, profiled: V8's CPU profile from navigation to the first screen, and
 * another from there until the sync is done, each as self time by part of the code.
 */
async function profiledRun(browser: Browser, assetsDir: string) {
  const page = await freshPage(browser)
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 250 })
  await cdp.send('Profiler.start')
  await page.goto(server.url)
  await page.waitForFunction(() => window.__demoBench.firstNotePainted !== null, null, {
    polling: 10,
    timeout: 60_000,
  })
  const first = (await cdp.send('Profiler.stop')) as { profile: CpuProfile }
  const firstScreenMs = await page.evaluate(() => window.__demoBench.firstNotePainted)
  await cdp.send('Profiler.start')
  await waitSynced(page)
  const rest = (await cdp.send('Profiler.stop')) as { profile: CpuProfile }
  const syncDoneMs = await page.evaluate(() => window.__demoBench.syncDone)
  await page.context().close()
  if (PROFILE_OUT) {
    mkdirSync(PROFILE_OUT, { recursive: true })
    writeFileSync(join(PROFILE_OUT, 'until-first-screen.cpuprofile'), JSON.stringify(first.profile))
    writeFileSync(join(PROFILE_OUT, 'first-screen-to-sync-done.cpuprofile'), JSON.stringify(rest.profile))
    cpSync(assetsDir, join(PROFILE_OUT, 'assets'), { recursive: true })
  }
  return {
    note: 'an extra run, not in the figures above; the profiler slows the page a little',
    loadAverage: round(loadavg()[0]!),
    untilFirstScreen: { ms: round(firstScreenMs ?? 0), selfTimeMs: profileShares(first.profile, assetsDir) },
    firstScreenToSyncDone: {
      ms: round((syncDoneMs ?? 0) - (firstScreenMs ?? 0)),
      selfTimeMs: profileShares(rest.profile, assetsDir),
    },
  }
}

/** The long frames' scripts with where their code comes from. */
function withOrigins(frames: LongFrame[], assetsDir: string) {
  return frames.map((frame) => ({
    at: round(frame.at),
    ms: round(frame.ms),
    blockingMs: round(frame.blockingMs),
    scripts: frame.scripts.map((script) => ({
      ...script,
      ms: round(script.ms),
      origin: originOf(script.source, assetsDir),
    })),
  }))
}

// The same browser as the end-to-end tests; without one there is nothing to measure.
const executablePath = findBrowser({ env: process.env, platform: process.platform })
if (!executablePath) {
  console.error(`No Chromium or Chrome found for the benchmark: ${HOW_TO_GET_A_BROWSER}.`)
  process.exit(1)
}

const staticDir = mkdtempSync(join(tmpdir(), 'tidesync-demo-bench-'))
await buildApp(staticDir)
const server = await startDemoServer({ port: 0, dataDir: 'memory', staticDir, logger: quiet, trace: true })
const browser = await launchBrowser(executablePath)
try {
  // Notes that were in the database before anyone synced: the initial load serves them all.
  await seedNotes(server.database.db, RECORDS)

  const assetsDir = join(staticDir, 'assets')
  const runs = []
  for (let run = 1; run <= RUNS; run++) {
    const loadAverage = round(loadavg()[0]!)
    const page = await freshPage(browser)
    traced.length = 0
    runStarted = performance.now()
    await page.goto(server.url)
    if (run === 1) {
      await page.getByTestId('sync-progress').waitFor({ timeout: 60_000 })
      await screenshot(page, 'bench-initial-sync-progress', { fullPage: false })
    }
    await waitSynced(page)
    const stored = await storedNotes(page)
    if (stored !== RECORDS) throw new Error(`IndexedDB holds ${stored} notes, not ${RECORDS}`)
    if (run === 1) await screenshot(page, 'bench-initial-sync-done', { fullPage: false })

    const loading = await page.evaluate(() => {
      const probe = window.__demoBench
      const done = probe.syncDone ?? performance.now()
      const tasks = probe.longTasks.filter((task) => task.at <= done)
      return {
        firstNoteInDom: probe.firstNoteInDom,
        firstNotePainted: probe.firstNotePainted,
        syncDone: probe.syncDone,
        longTaskSupported: probe.longTaskSupported,
        longestTaskMs: tasks.reduce((max, task) => Math.max(max, task.ms), 0),
        longTasks: tasks.length,
        totalBlockingMs: tasks.reduce((sum, task) => sum + Math.max(0, task.ms - 50), 0),
        slowestTasks: [...tasks].sort((a, b) => b.ms - a.ms).slice(0, 5),
        longFrames: probe.longFrames
          .filter((frame) => frame.at <= done)
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 3),
      }
    })
    if (loading.firstNotePainted === null || loading.syncDone === null)
      throw new Error(`the probe missed the first screen or the end of the sync: ${JSON.stringify(loading)}`)
    const timeline = await timelineOf(page)
    const requests = [...traced]

    const scroll = await page.evaluate(
      ([step, timeoutMs]) => window.__demoBench.scrollThrough(step, timeoutMs),
      [SCROLL_STEP, 180_000] as const,
    )
    if (scroll) {
      if (scroll.timedOut)
        throw new Error(`scrolling did not reach the end of the list: ${JSON.stringify(scroll)}`)
      if (scroll.lastTitle !== `Sample note ${RECORDS}`)
        throw new Error(`the end of the list shows "${scroll.lastTitle}", not the oldest note`)
      if (run === 1) await screenshot(page, 'bench-scrolled-to-the-end', { fullPage: false })
    }

    const result = {
      loadAverage,
      firstScreenMs: round(loading.firstNotePainted),
      firstNoteInDomMs: round(loading.firstNoteInDom!),
      syncDoneMs: round(loading.syncDone),
      syncRecordsPerSecond: Math.round(RECORDS / (loading.syncDone / 1000)),
      longestTaskWhileLoadingMs: round(loading.longestTaskMs),
      longTasksWhileLoading: loading.longTasks,
      totalBlockingMsWhileLoading: round(loading.totalBlockingMs),
      slowestTasks: loading.slowestTasks.map((task) => ({ at: round(task.at), ms: round(task.ms) })),
      longestFramesWhileLoading: withOrigins(loading.longFrames, assetsDir),
      scroll: scroll && { ...scroll, longFrames: withOrigins(scroll.longFrames, assetsDir) },
      timeline,
      serverRequests: {
        firstAnswers: requests.slice(0, 6),
        pulls: requests.filter((request) => request.event === 'sync:pull').length,
        pullServerMs: requests
          .filter((request) => request.event === 'sync:pull')
          .reduce((sum, r) => sum + r.ms, 0),
      },
      storedInIndexedDb: stored,
    }
    runs.push(result)
    console.log(
      `run ${run}: first screen ${result.firstScreenMs} ms, sync done ${result.syncDoneMs} ms ` +
        `(${result.syncRecordsPerSecond} records/s), longest task while loading ${result.longestTaskWhileLoadingMs} ms` +
        (scroll
          ? `; scrolling ${RECORDS} notes: longest frame ${round(scroll.longestFrameMs)} ms, ` +
            `${scroll.framesOver50} of ${scroll.frames} frames over 50 ms, ${scroll.waitingFrames} waiting for notes`
          : '; no notes scroller on the page'),
    )
    await page.context().close()
  }
  console.log('one more run, profiled')
  const profile = await profiledRun(browser, assetsDir)

  const scrolls = runs.flatMap((run) => (run.scroll ? [run.scroll] : []))
  const firstScreenMs = spread(runs.map((run) => run.firstScreenMs))
  const results = {
    benchmark: 'the demo page opened by a new user, 10,000 notes on the server',
    measured: {
      firstScreenMs:
        'from navigation until the first note cards are painted (the frame after they entered the DOM)',
      syncDoneMs:
        'from navigation until the page says Online with nothing pending, no progress bar, and 10,000 notes (all in IndexedDB)',
      longestTaskWhileLoadingMs:
        'the longest main-thread task (PerformanceObserver longtask) from navigation until the sync is done; 0: none over 50 ms',
      scroll: `then the list scrolled top to bottom through every note, ${SCROLL_STEP} px per animation frame; longestFrameMs: the longest time between two frames`,
    },
    goal: { firstScreenMs: FIRST_SCREEN_GOAL_MS, met: firstScreenMs.median <= FIRST_SCREEN_GOAL_MS },
    records: RECORDS,
    firstScreenMs,
    syncDoneMs: spread(runs.map((run) => run.syncDoneMs)),
    syncRecordsPerSecond: spread(runs.map((run) => run.syncRecordsPerSecond)),
    longestTaskWhileLoadingMs: spread(runs.map((run) => run.longestTaskWhileLoadingMs)),
    totalBlockingMsWhileLoading: spread(runs.map((run) => run.totalBlockingMsWhileLoading)),
    scroll:
      scrolls.length > 0
        ? {
            stepPx: SCROLL_STEP,
            longestFrameMs: spread(scrolls.map((s) => s.longestFrameMs)),
            p99FrameMs: spread(scrolls.map((s) => s.p99FrameMs)),
            medianFrameMs: spread(scrolls.map((s) => s.medianFrameMs)),
            framesOver50: spread(scrolls.map((s) => s.framesOver50)),
            frames: spread(scrolls.map((s) => s.frames)),
            waitingFrames: spread(scrolls.map((s) => s.waitingFrames)),
            longestTaskMs: spread(scrolls.map((s) => s.longestTaskMs)),
            ms: spread(scrolls.map((s) => s.ms)),
          }
        : null,
    runs,
    profile,
    earlier: earlierFigure(),
    setup: {
      browser: `Chromium ${browser.version()} (headless)`,
      server: 'demo server, PGlite in memory, memory IPC, same machine',
      viewport: '1200 x 760',
      pageSize: 1000,
      node: process.version,
      cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
      date: new Date().toISOString(),
    },
  }
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
  console.log(
    `median: first screen ${firstScreenMs.median} ms (${firstScreenMs.min}–${firstScreenMs.max}; goal ${FIRST_SCREEN_GOAL_MS} ms), ` +
      `sync done ${results.syncDoneMs.median} ms, longest task while loading ${results.longestTaskWhileLoadingMs.median} ms` +
      (results.scroll ? `, longest frame while scrolling ${results.scroll.longestFrameMs.median} ms` : '') +
      '; written to bench/results.json',
  )
} finally {
  await browser.close()
  await server.close()
  rmSync(staticDir, { recursive: true, force: true })
}
