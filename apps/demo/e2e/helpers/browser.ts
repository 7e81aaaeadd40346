import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'

export const RESULTS_DIR = fileURLToPath(new URL('../../test-results/', import.meta.url))

/**
 * Starts the installed Chromium or Chrome at `executablePath` (from `requireBrowser` in tests,
 * `findBrowser` elsewhere; never a downloaded browser), headless.
 */
export function launchBrowser(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}

/** One person's browser window: its own context, so its own IndexedDB and its own network. */
export interface AppWindow {
  name: string
  context: BrowserContext
  page: Page
  /** Page errors and console errors seen so far (a healthy app has none while online). */
  problems: string[]
}

/** Opens the demo as `name` (the display name is set before the app starts). */
export async function openWindow(browser: Browser, url: string, name: string): Promise<AppWindow> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, locale: 'en-GB' })
  await context.addInitScript((who) => localStorage.setItem('tidesync-demo:name', who), name)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
  await page.goto(url)
  await page.getByTestId('connection-state').waitFor()
  return { name, context, page, problems }
}

/** Saves a screenshot in apps/demo/test-results/<name>.png (the whole page unless `fullPage: false`). */
export async function screenshot(
  page: Page,
  name: string,
  options: { fullPage?: boolean } = {},
): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true })
  await page.screenshot({ path: `${RESULTS_DIR}${name}.png`, fullPage: options.fullPage ?? true })
}
