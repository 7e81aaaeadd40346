/**
 * Benchmark: the initial sync of 10,000 notes into Chromium's IndexedDB through the demo page.
 *
 * The demo server (PGlite in memory, memory IPC) starts with 10,000 notes already in the
 * database. For each run, a fresh browser context (empty IndexedDB) opens the page, and the
 * clock runs from navigation until the page shows all 10,000 notes, nothing pending and no
 * sync running. The figure includes loading the page and the app; the notes arrive in pages of
 * 1,000 (tidesync's default) and are written to IndexedDB 1,000 per transaction.
 *
 * Run: npm run bench -w @tidesync/demo. Writes apps/demo/bench/results.json. Needs an installed
 * Chromium or Chrome, found as the browser tests find it (`CHROMIUM_PATH`, then the usual places).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import { launchBrowser, screenshot } from '../e2e/helpers/browser.js'
import { findBrowser, HOW_TO_GET_A_BROWSER } from '../e2e/helpers/find-browser.js'
import { startDemoServer } from '../server/demo-server.js'
import { seedNotes } from '../server/seed.js'

const RECORDS = 10_000
const RUNS = 3
const demoRoot = fileURLToPath(new URL('..', import.meta.url))

const quiet = {
  debug() {},
  info() {},
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
      build: { outDir, emptyOutDir: true },
    })
  } finally {
    process.env.NODE_ENV = nodeEnv
  }
}

// The same browser as the end-to-end tests; without one there is nothing to measure.
const executablePath = findBrowser({ env: process.env, platform: process.platform })
if (!executablePath) {
  console.error(`No Chromium or Chrome found for the benchmark: ${HOW_TO_GET_A_BROWSER}.`)
  process.exit(1)
}

const staticDir = mkdtempSync(join(tmpdir(), 'tidesync-demo-bench-'))
await buildApp(staticDir)
const server = await startDemoServer({ port: 0, dataDir: 'memory', staticDir, logger: quiet })
const browser = await launchBrowser(executablePath)
try {
  // Notes that were in the database before anyone synced: the initial load serves them all.
  await seedNotes(server.database.db, RECORDS)

  const runs: Array<{ ms: number; recordsPerSecond: number; storedInIndexedDb: number }> = []
  for (let run = 1; run <= RUNS; run++) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, locale: 'en-GB' })
    await context.addInitScript(() => localStorage.setItem('tidesync-demo:name', 'Bench'))
    const page = await context.newPage()
    const started = performance.now()
    await page.goto(server.url)
    if (run === 1) {
      await page.getByTestId('sync-progress').waitFor({ timeout: 60_000 })
      await screenshot(page, 'bench-initial-sync-progress', { fullPage: false })
    }
    await page.waitForFunction(
      // No named helpers in here: tsx would wrap them in a `__name` call the page does not know.
      (expected) =>
        ['note-count', 'pending-count', 'connection-state']
          .map((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim())
          .join('|') === `${expected}|0|Online` && !document.querySelector('[data-testid="sync-progress"]'),
      RECORDS.toLocaleString('en'),
      { polling: 20, timeout: 180_000 },
    )
    const ms = performance.now() - started
    const storedInIndexedDb = await page.evaluate(
      () =>
        new Promise<number>((resolve, reject) => {
          const request = indexedDB.open('tidesync-demo')
          request.onerror = () => reject(request.error)
          request.onsuccess = () => {
            const count = request.result.transaction('r_notes').objectStore('r_notes').count()
            count.onsuccess = () => resolve(count.result)
            count.onerror = () => reject(count.error)
          }
        }),
    )
    if (storedInIndexedDb !== RECORDS)
      throw new Error(`IndexedDB holds ${storedInIndexedDb} notes, not ${RECORDS}`)
    if (run === 1) await screenshot(page, 'bench-initial-sync-done', { fullPage: false })
    runs.push({ ms: Math.round(ms), recordsPerSecond: Math.round(RECORDS / (ms / 1000)), storedInIndexedDb })
    console.log(
      `run ${run}: ${RECORDS} notes in ${Math.round(ms)} ms = ${runs.at(-1)!.recordsPerSecond} records/s`,
    )
    await context.close()
  }

  const sorted = [...runs].sort((a, b) => a.ms - b.ms)
  const median = sorted[Math.floor(sorted.length / 2)]!
  const results = {
    benchmark: 'initial sync of 10,000 notes into Chromium IndexedDB through the demo page',
    measured: 'from navigation until the page shows every note with nothing pending (page load included)',
    records: RECORDS,
    medianMs: median.ms,
    medianRecordsPerSecond: median.recordsPerSecond,
    runs,
    setup: {
      browser: `Chromium ${browser.version()} (headless)`,
      server: 'demo server, PGlite in memory, memory IPC, same machine',
      pageSize: 1000,
      node: process.version,
      cpu: `${cpus()[0]?.model ?? 'unknown'} x${cpus().length}`,
      date: new Date().toISOString(),
    },
  }
  writeFileSync(join(demoRoot, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
  console.log(`median: ${median.recordsPerSecond} records/s (${median.ms} ms); written to bench/results.json`)
} finally {
  await browser.close()
  await server.close()
  rmSync(staticDir, { recursive: true, force: true })
}
