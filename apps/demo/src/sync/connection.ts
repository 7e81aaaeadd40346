import { createClient, type TidesyncClient, type TidesyncSocket } from '@tidesync/client'
import { io, type Socket } from 'socket.io-client'
import type { DemoClientEvents, DemoServerEvents } from '../../shared/events.js'
import { counters, syncedSchema } from '../../shared/schema.js'

export type DemoSocket = Socket<DemoServerEvents, DemoClientEvents>
export type NotesClient = TidesyncClient<typeof syncedSchema>

/** The client's IndexedDB database: every tab of this origin shares it. */
export const DB_NAME = 'tidesync-demo'

export interface Connection {
  /** The one socket.io connection: tidesync's protocol and the demo's presence/activity events. */
  socket: DemoSocket
  client: NotesClient
}

/**
 * Opens the local database and the connection to the server that served the page. The app
 * makes the socket itself (and hands it to tidesync), so presence and the activity feed share
 * the connection and go offline with it.
 *
 * For a fast first screen, the socket starts connecting at once, while the client opens its
 * database (the client uses a socket that is connected or joining as it is), and over a
 * websocket straight away, without socket.io's long-polling start and upgrade; where no
 * websocket gets through, it falls back to long-polling (`tryAllTransports`).
 */
export function connect(options: { name: string; online: boolean }): Connection {
  const socket: DemoSocket = io({
    autoConnect: false,
    auth: { name: options.name },
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
  })
  if (options.online) socket.connect()
  const client = createClient({
    socket: socket as unknown as TidesyncSocket,
    schema: syncedSchema,
    // The list shows the newest notes first, a page at a time: an index on createdAt lets
    // `find$` with `orderBy: '-createdAt'` and a `limit` read just that page.
    models: { notes: { counters: counters.notes, indexes: ['createdAt'] } },
    dbName: DB_NAME,
    online: options.online,
  })
  // Back on the network: try at once instead of waiting for socket.io's next backoff step.
  window.addEventListener('online', () => {
    if (client.status.online || socket.connected || !socket.active) return
    socket.disconnect()
    client.goOnline()
  })
  return { socket, client }
}
