import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/** The bundled page in a temporary folder: `index.html`, `page.js`, `worker.js` and their source maps. */
export interface PageBundle {
  dir: string
  /** Bytes of `page.js`. */
  bytes: number
  remove(): void
}

const INDEX_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>loading</title></head>
<body><script type="module" src="/page.js"></script></body></html>
`

/**
 * Bundles `page.ts` for the browser with esbuild: the client from its TypeScript sources (the
 * workspace packages' `source` condition), not minified (the profile names functions), with a
 * source map (the profile maps samples back to files).
 */
export async function bundlePage(): Promise<PageBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'tidesync-chromium-bench-'))
  try {
    const result = await build({
      entryPoints: {
        page: fileURLToPath(new URL('./page.ts', import.meta.url)),
        worker: fileURLToPath(new URL('./worker.ts', import.meta.url)),
      },
      outdir: dir,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'chrome120',
      conditions: ['source'],
      sourcemap: 'linked',
      minify: false,
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'warning',
      metafile: true,
    })
    writeFileSync(join(dir, 'index.html'), INDEX_HTML)
    const bytes =
      result.metafile.outputs[Object.keys(result.metafile.outputs).find((name) => name.endsWith('page.js'))!]!
        .bytes
    return { dir, bytes, remove: () => rmSync(dir, { recursive: true, force: true }) }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}
