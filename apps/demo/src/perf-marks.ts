import type { DemoSocket, NotesClient } from './sync/connection.js'

/**
 * Marks on the page's performance timeline (User Timing) at the steps of a load, once each:
 * DevTools' Performance panel shows them, and the benchmark (bench/initial-sync.bench.ts) reads
 * them to tell where the time to the first screen goes. A mark costs next to nothing.
 *
 * - `demo:script-start`: the app's bundle is loaded and runs;
 * - `demo:app-mounted`: Vue rendered the page (no notes yet);
 * - `demo:db-open`: the client opened its IndexedDB database;
 * - `demo:engine-open`, `demo:socket-connected`: the socket's connection is open, and it joined;
 * - `demo:sent <event>`: the first request of each kind went out (`subscribe`, `sync:pull`...);
 * - `demo:first-page-stored`: the first page of a long initial sync is in IndexedDB;
 * - `demo:first-notes`: the notes list got its first notes (use-note-pages.ts);
 * - `demo:synced`: the first complete sync of this page load finished.
 */
export function markOnce(name: `demo:${string}`): void {
  if (typeof performance === 'undefined' || performance.getEntriesByName(name, 'mark').length > 0) return
  performance.mark(name)
}

/** Marks the client's and the socket's steps (see `markOnce`). */
export function markLoadSteps(client: NotesClient, socket: DemoSocket): void {
  void client.ready.then(
    () => markOnce('demo:db-open'),
    () => {},
  )
  socket.once('connect', () => markOnce('demo:socket-connected'))
  socket.io.once('open', () => markOnce('demo:engine-open'))
  const sent = (event: string) => markOnce(`demo:sent ${event}`)
  socket.onAnyOutgoing(sent)
  let done = false
  const subscription = client.status$.subscribe((status) => {
    if (done) return
    if (status.progress && status.progress.loaded > 0) markOnce('demo:first-page-stored')
    // A sync of an earlier page load is remembered and shown at once: only a newer one counts.
    if (status.lastSyncedAt && status.lastSyncedAt.getTime() >= performance.timeOrigin) {
      done = true
      markOnce('demo:synced')
      socket.offAnyOutgoing(sent)
      queueMicrotask(() => subscription.unsubscribe())
    }
  })
}
