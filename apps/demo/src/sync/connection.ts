import { createClient, type TidesyncClient, type TidesyncSocket } from '@tidesync/client'
import { io, type Socket } from 'socket.io-client'
import type { DemoClientEvents, DemoServerEvents } from '../../shared/events.js'
import { counters, syncedSchema } from '../../shared/schema.js'

export type DemoSocket = Socket<DemoServerEvents, DemoClientEvents>
export type NotesClient = TidesyncClient<typeof syncedSchema>

export interface Connection {
  /** The one socket.io connection: tidesync's protocol and the demo's presence/activity events. */
  socket: DemoSocket
  client: NotesClient
}

/**
 * Opens the local database and the connection to the server that served the page. The app
 * makes the socket itself (and hands it to tidesync), so presence and the activity feed share
 * the connection and go offline with it.
 */
export function connect(options: { name: string; online: boolean }): Connection {
  const socket: DemoSocket = io({
    autoConnect: false,
    auth: { name: options.name },
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  })
  const client = createClient({
    socket: socket as unknown as TidesyncSocket,
    schema: syncedSchema,
    models: { notes: { counters: counters.notes } },
    dbName: 'tidesync-demo',
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
