import { type ServerHandle, startServerProcess } from '../lib/server-handle.js'
import type { SeedSet } from '../lib/server-process.js'
import { withTimeout } from './bench-page.js'
import { type BenchBrowser, launchBenchBrowser } from './browser.js'
import { bundlePage, type PageBundle } from './bundle.js'
import { servePage } from './static-server.js'

/** Everything a Chromium benchmark run needs, started together and closed together. */
export interface Harness {
  /** The benchmark page (`page.ts`), served on 127.0.0.1. */
  pageUrl: string
  /** The tidesync server (its own process). */
  server: ServerHandle
  browser: BenchBrowser
  bundle: PageBundle
  /** Closes the browser, the page server and the tidesync server, and removes the temporary folders. */
  close(): Promise<void>
}

/**
 * Bundles and serves the page, starts the tidesync server seeded with `sets` and the browser.
 * Whatever started is closed again if a later step fails, and on SIGINT/SIGTERM.
 */
export async function startHarness(sets: SeedSet[], seedTimeoutMs: number): Promise<Harness> {
  const closers: Array<() => Promise<void> | void> = []
  let closing: Promise<void> | null = null
  const close = () => {
    closing ??= (async () => {
      for (const closer of closers.reverse()) {
        try {
          await withTimeout(Promise.resolve(closer()), 30_000, 'closing')
        } catch (error) {
          console.error(error)
        }
      }
    })()
    return closing
  }
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: closing the browser and the server`)
    void close().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  closers.push(() => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  })
  try {
    const bundle = await bundlePage()
    closers.push(() => bundle.remove())
    const pages = await servePage(bundle.dir)
    closers.push(() => pages.close())
    const server = await withTimeout(startServerProcess(sets), seedTimeoutMs, 'seeding the server')
    closers.push(() => server.close())
    const browser = await launchBenchBrowser()
    closers.push(() => browser.close())
    return { pageUrl: pages.url, server, browser, bundle, close }
  } catch (error) {
    await close()
    throw error
  }
}
