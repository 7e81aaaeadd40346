/**
 * Registers the service worker that keeps the app itself (HTML, scripts, styles) available
 * offline, so a reload without network still opens the app and its local data. Only in the
 * built app: the dev server reloads modules itself.
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return
  navigator.serviceWorker.register('/sw.js').catch((error) => {
    console.warn('The offline app shell is not available:', error)
  })
}
