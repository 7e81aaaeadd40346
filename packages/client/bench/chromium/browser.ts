import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { findBrowserPid } from './process-cpu.js'

/**
 * The installed Chromium or Chrome, looked for as the demo's browser tests look
 * (apps/demo/e2e/helpers/find-browser.ts): `CHROMIUM_PATH` first, then the usual Linux places
 * (Debian's /usr/bin/chromium first). Never a downloaded browser.
 */
const PLACES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/opt/google/chrome/chrome',
  '/usr/local/bin/chromium',
  '/usr/local/bin/chrome',
]

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function findBrowser(): string {
  const chosen = process.env.CHROMIUM_PATH
  if (chosen) {
    if (isExecutableFile(chosen)) return chosen
    throw new Error(`CHROMIUM_PATH=${chosen} is not an executable file`)
  }
  const found = PLACES.find(isExecutableFile)
  if (!found)
    throw new Error(
      'No Chromium or Chrome found: install Chromium (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH',
    )
  return found
}

/** A headless browser with a profile of its own on disk, and how to end it. */
export interface BenchBrowser {
  context: BrowserContext
  executablePath: string
  version: string
  /** The browser's main process (null where /proc cannot tell). */
  pid: number | null
  close(): Promise<void>
}

/**
 * Starts the browser headless with a fresh profile in a temporary folder: a persistent context,
 * so IndexedDB is stored on disk as in a user's browser (an incognito context, what
 * `browser.newContext()` makes, keeps IndexedDB in memory). The same flags as the demo's
 * browser tests, and no throttling of a page in the background.
 */
export async function launchBenchBrowser(): Promise<BenchBrowser> {
  const executablePath = findBrowser()
  const profile = mkdtempSync(join(tmpdir(), 'tidesync-chromium-profile-'))
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      timeout: 60_000,
      viewport: { width: 1200, height: 760 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-background-timer-throttling',
        '--disable-renderer-backgrounding',
        '--disable-backgrounding-occluded-windows',
      ],
    })
  } catch (error) {
    rmSync(profile, { recursive: true, force: true })
    throw error
  }
  const version = context.browser()?.version() ?? 'unknown'
  const pid = findBrowserPid(profile)
  let closed = false
  return {
    context,
    executablePath,
    version,
    pid,
    async close() {
      if (closed) return
      closed = true
      await context.close().catch(() => {})
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
