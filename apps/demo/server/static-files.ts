import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, normalize, relative, resolve, sep } from 'node:path'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
}

/** Every file of the built app, as URL paths: the service worker caches them for offline reloads. */
function listFiles(root: string): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (!entry.name.endsWith('.map')) files.push(`/${relative(root, path).split(sep).join('/')}`)
    }
  }
  walk(root)
  return files.sort()
}

/**
 * Serves the built Vite app from `root`: files by path, `/precache.json` (the list of files),
 * and `index.html` for every other GET (client-side routes). Hashed assets are cached for a
 * year; the page and the service worker are revalidated on every load.
 */
export function staticFiles(root: string): (req: IncomingMessage, res: ServerResponse) => void {
  const base = resolve(root)
  const indexHtml = join(base, 'index.html')
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (!existsSync(indexHtml)) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`The app is not built: run "npm run build -w @tidesync/demo" (looked in ${base}).\n`)
      return
    }
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/precache.json') {
      res.writeHead(200, { 'content-type': TYPES['.json']!, 'cache-control': 'no-cache' })
      res.end(JSON.stringify(['/', ...listFiles(base).filter((f) => f !== '/index.html' && f !== '/sw.js')]))
      return
    }
    let path = indexHtml
    try {
      const wanted = join(base, normalize(decodeURIComponent(url.pathname)))
      if (wanted.startsWith(base + sep) && existsSync(wanted) && statSync(wanted).isFile()) path = wanted
    } catch {
      // A malformed path: answer with the app.
    }
    const immutable = path.startsWith(join(base, 'assets') + sep)
    res.writeHead(200, {
      'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    })
    if (req.method === 'HEAD') res.end()
    else createReadStream(path).pipe(res)
  }
}
