/**
 * An experiment (`tidesyncWorker` in `page.ts`): the whole client in a dedicated worker, as a
 * client that moved its sync off the page's main thread would run. The worker opens the client
 * and connects (`prepare`), syncs `{ projectId }` when told (`run`, timed here), then closes the
 * client, counts what IndexedDB holds and deletes the database (`finish`). The page only waits.
 */
import { filter, firstValueFrom } from 'rxjs'
import { io, type Socket } from 'socket.io-client'
import { modelOptions, schema } from '../../src/__tests__/helpers/schema.js'
import { createClient, type TidesyncClient } from '../../src/core/client.js'
import { countStored, deleteDatabase } from './idb-helpers.js'

export type WorkerRequest =
  | { type: 'prepare'; url: string; projectId: string; count: number; dbName: string }
  | { type: 'run' }
  | { type: 'finish' }

export type WorkerReply =
  | { type: 'prepared' }
  | { type: 'ran'; ms: number }
  | { type: 'finished' }
  | { type: 'error'; message: string }

const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }
let socket: Socket | undefined
let client: TidesyncClient<typeof schema> | undefined
let args: Extract<WorkerRequest, { type: 'prepare' }> | undefined

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  if (request.type === 'prepare') {
    args = request
    socket = io(request.url, { transports: ['websocket'], forceNew: true, reconnection: false })
    await new Promise((resolve, reject) => {
      socket!.once('connect', () => resolve(undefined))
      socket!.once('connect_error', reject)
    })
    client = createClient({
      socket: socket as never,
      schema,
      models: modelOptions,
      dbName: request.dbName,
      logger: silent,
    })
    await client.ready
    await firstValueFrom(client.status$.pipe(filter((s) => s.online && !s.syncing)))
    return { type: 'prepared' }
  }
  if (request.type === 'run') {
    const started = performance.now()
    const state = await firstValueFrom(
      client!
        .collection('todos')
        .syncState$({ projectId: args!.projectId })
        .pipe(filter((s) => s.synced || s.error !== null)),
    )
    if (state.error) throw state.error
    return { type: 'ran', ms: performance.now() - started }
  }
  try {
    await client?.close()
    socket?.close()
    const stored = await countStored(args!.dbName, 'r_todos')
    if (stored !== args!.count)
      throw new Error(`tidesyncWorker: IndexedDB holds ${stored} of ${args!.count} records`)
    return { type: 'finished' }
  } finally {
    await deleteDatabase(args!.dbName)
  }
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  handle(event.data).then(
    (reply) => self.postMessage(reply),
    (error: Error) =>
      self.postMessage({ type: 'error', message: String(error?.message ?? error) } satisfies WorkerReply),
  )
}
