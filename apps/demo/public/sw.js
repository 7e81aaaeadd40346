// The demo's service worker: keeps the app shell (HTML, scripts, styles) so that a reload
// without network still opens the app; the notes themselves live in IndexedDB (tidesync).
// Network first (always the newest build when online), the cache when the network fails.
const CACHE = 'tidesync-demo-shell-v1'

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE)
      const files = await (await fetch('/precache.json', { cache: 'no-store' })).json()
      await cache.addAll(files)
      await self.skipWaiting()
    })(),
  )
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key)
      await self.clients.claim()
    })(),
  )
})

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  if (event.request.method !== 'GET' || url.origin !== location.origin) return
  if (url.pathname.startsWith('/socket.io/')) return
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE)
      // Built assets have content hashes in their names: a cached one never changes.
      if (url.pathname.startsWith('/assets/')) {
        const cached = await cache.match(event.request)
        if (cached) return cached
      }
      try {
        const response = await fetch(event.request)
        if (response.ok)
          await cache.put(event.request.mode === 'navigate' ? '/' : event.request, response.clone())
        return response
      } catch (error) {
        const cached = await cache.match(event.request.mode === 'navigate' ? '/' : event.request)
        if (cached) return cached
        throw error
      }
    })(),
  )
})
