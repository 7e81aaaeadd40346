import type { NotesClient } from './sync/connection.js'

/**
 * Registers the service worker that keeps the app itself (HTML, scripts, styles) available
 * offline, so a reload without network still opens the app and its local data. Only in the
 * built app: the dev server reloads modules itself.
 *
 * It is registered once the page has settled (`settled`): installing it downloads the app's
 * files again and starts a worker, which would otherwise compete with the first screen.
 */
export function registerServiceWorker(settled: Promise<unknown>): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return
  void settled.then(() =>
    navigator.serviceWorker.register('/sw.js').catch((error) => {
      console.warn('The offline app shell is not available:', error)
    }),
  )
}

/**
 * Resolves after the first complete sync of this page load, or `delayMs` after the load event,
 * whichever comes first (offline, or a long first sync).
 */
export function pageSettled(client: NotesClient, delayMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    const later = () => setTimeout(resolve, delayMs)
    if (document.readyState === 'complete') later()
    else window.addEventListener('load', later, { once: true })
    let done = false
    const subscription = client.status$.subscribe((status) => {
      // A sync of an earlier page load is remembered and shown at once: only a newer one counts.
      if (done || !status.lastSyncedAt || status.lastSyncedAt.getTime() < performance.timeOrigin) return
      done = true
      resolve()
      queueMicrotask(() => subscription.unsubscribe())
    })
  })
}
