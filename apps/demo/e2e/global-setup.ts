import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import type { TestProject } from 'vitest/node'
import { decideBrowser } from './helpers/find-browser.js'

declare module 'vitest' {
  interface ProvidedContext {
    /** The Vite build of the app that the test servers serve. */
    staticDir: string
    /**
     * The browser the browser tests drive: its executable, or null to skip them, or the error
     * that fails them (no browser under CI=true, a bad CHROMIUM_PATH). See `requireBrowser`.
     */
    browser: { executablePath: string | null; error?: string }
  }
}

/**
 * Finds the browser once for every test file (printing the one line that says why the browser
 * tests skip, when they do) and builds the app once, into a temporary folder (apps/demo/dist is
 * left alone).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  try {
    const decision = decideBrowser({ env: process.env, platform: process.platform })
    if (!decision.run) console.warn(decision.notice)
    project.provide('browser', { executablePath: decision.run ? decision.executablePath : null })
  } catch (error) {
    // Not thrown here: the browser test files fail with it, the others still run.
    project.provide('browser', { executablePath: null, error: (error as Error).message })
  }

  const outDir = mkdtempSync(join(tmpdir(), 'tidesync-demo-e2e-'))
  // The same production build as `npm run demo` (vitest sets NODE_ENV=test, which Vite would
  // otherwise turn into a development flavour: no service worker, Vue's dev build).
  const nodeEnv = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await build({
      root: fileURLToPath(new URL('..', import.meta.url)),
      configFile: fileURLToPath(new URL('../vite.config.ts', import.meta.url)),
      mode: 'production',
      logLevel: 'warn',
      build: { outDir, emptyOutDir: true },
    })
  } finally {
    process.env.NODE_ENV = nodeEnv
  }
  project.provide('staticDir', outDir)
  return () => rmSync(outDir, { recursive: true, force: true })
}
