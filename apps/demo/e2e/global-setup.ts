import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  interface ProvidedContext {
    /** The Vite build of the app that the test servers serve. */
    staticDir: string
  }
}

/** Builds the app once for every test file, into a temporary folder (apps/demo/dist is left alone). */
export default async function setup(project: TestProject): Promise<() => void> {
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
