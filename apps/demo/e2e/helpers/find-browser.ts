/**
 * Finds the Chromium or Chrome that the browser tests and the benchmark drive, the way people
 * have one installed (never a downloaded browser), and decides what a test run does without one.
 *
 * Pure over its input (environment, platform, an executable-file check), so the decision is
 * tested without a browser: e2e/find-browser.test.ts.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { posix } from 'node:path'

export interface BrowserSearch {
  /** The environment: `CHROMIUM_PATH`, `PATH`, `HOME`, `CI`. */
  env: Readonly<Record<string, string | undefined>>
  /** Which well-known locations to look at (`process.platform`). */
  platform: NodeJS.Platform
  /** Whether `path` is a file this process may execute. @default isExecutableFile */
  isExecutable?: (path: string) => boolean
}

/** Debian's and other Linux distributions' locations, in the order they are tried. */
export const LINUX_BROWSERS: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
  '/opt/google/chrome/chrome',
  '/usr/local/bin/chromium',
  '/usr/local/bin/chrome',
]

/** macOS application bundles, in `/Applications` and then in `~/Applications`. */
export const MAC_BROWSERS: readonly string[] = [
  'Google Chrome.app/Contents/MacOS/Google Chrome',
  'Chromium.app/Contents/MacOS/Chromium',
]

/** Command names looked up on `PATH` after the well-known locations. */
export const BROWSER_COMMANDS: readonly string[] = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
  'chrome',
]

/** How to get a browser, said the same way in every message. */
export const HOW_TO_GET_A_BROWSER =
  'install Chromium (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome executable'

/** True when `path` is a regular file this process may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The same reading of `CI` as @tidesync/test-env's `isCI`. */
export function isCIEnv(env: BrowserSearch['env']): boolean {
  return env.CI === 'true' || env.CI === '1'
}

/** Every place looked at when `CHROMIUM_PATH` is unset, in order. */
export function browserCandidates(search: Omit<BrowserSearch, 'isExecutable'>): string[] {
  const { env, platform } = search
  const places: string[] = []
  if (platform === 'darwin') {
    for (const folder of ['/Applications', env.HOME && posix.join(env.HOME, 'Applications')]) {
      if (folder) places.push(...MAC_BROWSERS.map((app) => posix.join(folder, app)))
    }
  } else if (platform !== 'win32') {
    places.push(...LINUX_BROWSERS)
  }
  const delimiter = platform === 'win32' ? ';' : ':'
  for (const folder of (env.PATH ?? '').split(delimiter)) {
    if (folder) places.push(...BROWSER_COMMANDS.map((name) => `${folder.replace(/[\\/]+$/, '')}/${name}`))
  }
  return [...new Set(places)]
}

/**
 * The browser's executable: `CHROMIUM_PATH` when set, else the first of `browserCandidates`
 * that is an executable file, else null. Throws when `CHROMIUM_PATH` is set but is not an
 * executable file (a typo must not turn into a silent skip).
 */
export function findBrowser(search: BrowserSearch): string | null {
  const isExecutable = search.isExecutable ?? isExecutableFile
  const chosen = search.env.CHROMIUM_PATH
  if (chosen) {
    if (isExecutable(chosen)) return chosen
    throw new Error(
      `CHROMIUM_PATH=${chosen} is not an executable file: point it at a Chromium or Chrome executable, or unset it to look in the usual places.`,
    )
  }
  return browserCandidates(search).find((path) => isExecutable(path)) ?? null
}

export type BrowserDecision =
  | { run: true; executablePath: string }
  /** Skip the browser tests; `notice` is the one line to print. */
  | { run: false; notice: string }

/**
 * Whether the browser tests run: with the browser `findBrowser` found; without one they skip
 * (the notice says how to get one), except under `CI=true`, where this throws. A bad
 * `CHROMIUM_PATH` throws too.
 */
export function decideBrowser(search: BrowserSearch): BrowserDecision {
  const executablePath = findBrowser(search)
  if (executablePath) return { run: true, executablePath }
  if (isCIEnv(search.env)) {
    throw new Error(
      `No Chromium or Chrome found for the browser end-to-end tests: ${HOW_TO_GET_A_BROWSER}. CI=true requires it: install it or unset CI.`,
    )
  }
  return {
    run: false,
    notice: `[tidesync tests] skipping the browser end-to-end tests: no Chromium or Chrome found; ${HOW_TO_GET_A_BROWSER}.`,
  }
}
