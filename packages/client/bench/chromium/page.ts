/**
 * The benchmark page (bundled by `bundle.ts`, driven by `main.ts`): the cases of one run, each
 * in three steps so that only the middle one is timed and watched:
 *
 * - `prepare(mode, args)`: untimed set-up (connect, open the client, pull the baseline's rows);
 * - `run(mode)`: the timed part, with the main thread watched (`page-monitor.ts`);
 * - `finish(mode)`: checks what was stored, closes, deletes the database.
 *
 * Modes (the same as the Node benchmark's `cases/initial-sync.ts`):
 * - `tidesync`: a client with an empty database, connected and online, subscribes to
 *   `{ projectId }` (`syncState$`); timed until the subset reports `synced`.
 * - `tidesyncQuery`: the same while a `find$({ projectId }, { limit: 50 })` is subscribed, as
 *   an app showing a first screen has one: the live-query work during the load is in the time.
 *   Also reports when that query first showed 50 records.
 * - `dexie`: the floor for the local writes: the same rows, pulled and decoded untimed, written
 *   with a plain Dexie `bulkPut` of 1,000 per call into a table with the same indexes.
 * - `pull`: the floor for the server and the wire: the same pages over a bare socket (in columns,
 *   as the client asks for them), decoded and dropped.
 *
 * Two experiments for changes the client could make (not run unless asked for):
 * - `tidesyncWorker`: the whole client in a dedicated worker (`worker.ts`), the page only waits:
 *   what moving the sync off the main thread would give.
 * - `dexieSplit`: the `dexie` floor with each 1,000-row transaction written as `bulkPut`s of
 *   SPLIT rows awaited one after the other (one task per call instead of one for 1,000 puts).
 * - `dexiePacked`: the same rows stored 1,000 to one IndexedDB record (one `put` of an array per
 *   chunk): what IndexedDB costs per request rather than per byte (a store that kept rows in
 *   pages would pay this; queries would then need indexes of their own).
 *
 * The page talks to the bench server over a WebSocket (another origin: socket.io's WebSocket
 * transport needs no CORS).
 */
import type { PullResult, Reply } from '@tidesync/protocol'
import { Dexie } from 'dexie'
import { filter, firstValueFrom, type Subscription } from 'rxjs'
import { io, type Socket } from 'socket.io-client'
import { modelOptions, schema } from '../../src/__tests__/helpers/schema.js'
import { createClient, type TidesyncClient } from '../../src/core/client.js'
import { fromWire } from '../../src/core/schema/codec.js'
import { type ModelInfo, readSchema } from '../../src/core/schema/model.js'
import { upsertsOf } from '../../src/core/sync/columnar.js'
import { countStored, deleteDatabase } from './idb-helpers.js'
import { type Responsiveness, watchResponsiveness } from './page-monitor.js'
import type { WorkerReply, WorkerRequest } from './worker.js'

export type Mode =
  | 'tidesync'
  | 'tidesyncQuery'
  | 'dexie'
  | 'pull'
  | 'tidesyncWorker'
  | 'dexieSplit'
  | 'dexiePacked'

export interface CaseArgs {
  url: string
  projectId: string
  count: number
}

export interface CaseResult {
  ms: number
  responsiveness: Responsiveness
  /** `tidesyncQuery`: ms from the start until the live query showed its first 50 records. */
  firstScreenMs?: number
  /** `tidesyncQuery`: how often the live query emitted during the load. */
  queryEmissions?: number
}

const [todosModel] = readSchema({ todos: schema.todos }, modelOptions) as [ModelInfo]
const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }
const PAGE = 1000
/** `dexieSplit`: rows per `bulkPut` call inside a transaction of 1,000. */
const SPLIT = 100

async function connect(url: string): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false })
  await new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(undefined))
    socket.once('connect_error', reject)
  })
  return socket
}

/** Every page of `{ projectId }` over a bare socket, decoded; `keep` gets each page's upserts. */
async function pullAll(
  socket: Socket,
  projectId: string,
  keep?: (page: PullResult) => void,
): Promise<number> {
  let checkpoint = '0'
  let count = 0
  for (;;) {
    const page = await new Promise<PullResult>((resolve, reject) =>
      socket.emit(
        'sync:pull',
        { model: 'todos', where: { projectId }, checkpoint, limit: PAGE, format: 'columns' },
        (reply: Reply<PullResult>) =>
          reply.error ? reject(new Error(reply.error.message)) : resolve(reply.result!),
      ),
    )
    const upserts = upsertsOf(todosModel, page)
    keep?.({ ...page, upserts })
    count += upserts.length
    checkpoint = page.checkpoint
    if (!page.hasMore) return count
  }
}

interface Prepared {
  args: CaseArgs
  dbName: string
  socket?: Socket
  client?: TidesyncClient<typeof schema>
  rows?: Record<string, unknown>[][]
  dexie?: Dexie
  query?: Subscription
  worker?: Worker
}

/** Sends a request to the experiment's worker and waits for its answer. */
function ask(worker: Worker, request: WorkerRequest): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<WorkerReply>) =>
      event.data.type === 'error' ? reject(new Error(event.data.message)) : resolve(event.data)
    worker.onerror = (event) => reject(new Error(event.message))
    worker.postMessage(request)
  })
}

let prepared: Prepared | null = null
let serial = 0

async function prepare(mode: Mode, args: CaseArgs): Promise<void> {
  if (prepared) throw new Error('a case is already prepared')
  const dbName = `bench-${mode}-${Date.now()}-${serial++}`
  const state: Prepared = { args, dbName }
  prepared = state
  if (mode === 'tidesync' || mode === 'tidesyncQuery') {
    state.socket = await connect(args.url)
    state.client = createClient({
      socket: state.socket as never,
      schema,
      models: modelOptions,
      dbName,
      logger: silent,
    })
    await state.client.ready
    await firstValueFrom(state.client.status$.pipe(filter((s) => s.online && !s.syncing)))
  } else if (mode === 'tidesyncWorker') {
    state.worker = new Worker('/worker.js', { type: 'module' })
    await ask(state.worker, { type: 'prepare', ...args, dbName })
  } else if (mode === 'dexie' || mode === 'dexieSplit' || mode === 'dexiePacked') {
    const socket = await connect(args.url)
    const rows: Record<string, unknown>[][] = []
    await pullAll(socket, args.projectId, (page) =>
      rows.push(page.upserts.map((item) => fromWire(todosModel, item.record))),
    )
    socket.close()
    state.rows = rows
    state.dexie = new Dexie(dbName)
    state.dexie.version(1).stores({ todos: ['uid', ...modelOptions.todos.indexes].join(', '), packs: 'id' })
    await state.dexie.open()
  } else {
    state.socket = await connect(args.url)
  }
}

async function run(mode: Mode): Promise<CaseResult> {
  const state = prepared
  if (!state) throw new Error('no case prepared')
  const { projectId, count } = state.args
  const monitor = watchResponsiveness()
  performance.mark('bench:run:start')
  const started = performance.now()
  const extra: Partial<CaseResult> = {}
  if (mode === 'tidesync' || mode === 'tidesyncQuery') {
    const todos = state.client!.collection('todos')
    if (mode === 'tidesyncQuery') {
      let emissions = 0
      state.query = todos.find$({ projectId }, { limit: 50 }).subscribe((rows) => {
        emissions++
        if (extra.firstScreenMs === undefined && rows.length >= Math.min(50, count))
          extra.firstScreenMs = performance.now() - started
        extra.queryEmissions = emissions
      })
    }
    const syncState = await firstValueFrom(
      todos.syncState$({ projectId }).pipe(filter((s) => s.synced || s.error !== null)),
    )
    if (syncState.error) throw syncState.error
  } else if (mode === 'tidesyncWorker') {
    await ask(state.worker!, { type: 'run' })
  } else if (mode === 'dexie') {
    const table = state.dexie!.table('todos')
    for (const chunk of state.rows!) await table.bulkPut(chunk)
  } else if (mode === 'dexiePacked') {
    const table = state.dexie!.table('packs')
    for (const [id, rows] of state.rows!.entries()) await table.put({ id, rows })
  } else if (mode === 'dexieSplit') {
    const db = state.dexie!
    const table = db.table('todos')
    for (const chunk of state.rows!) {
      await db.transaction('rw', table, async () => {
        for (let i = 0; i < chunk.length; i += SPLIT) await table.bulkPut(chunk.slice(i, i + SPLIT))
      })
    }
  } else {
    const pulled = await pullAll(state.socket!, projectId)
    if (pulled !== count) throw new Error(`pulled ${pulled} of ${count} records`)
  }
  const ms = performance.now() - started
  performance.mark('bench:run:end')
  const responsiveness = await monitor.stop()
  return { ms, responsiveness, ...extra }
}

async function finish(mode: Mode): Promise<void> {
  const state = prepared
  if (!state) return
  prepared = null
  if (state.worker) {
    // The worker checks and deletes its own database.
    try {
      await ask(state.worker, { type: 'finish' })
    } finally {
      state.worker.terminate()
    }
    return
  }
  try {
    state.query?.unsubscribe()
    if (state.client) await state.client.close()
    state.socket?.close()
    state.dexie?.close()
    if (mode !== 'pull') {
      // Records stored: per row, or (packed) per chunk of rows.
      const table =
        mode === 'dexiePacked' ? 'packs' : mode.startsWith('dexie') ? 'todos' : todosModel.recordsTable
      const perRecord = mode === 'dexiePacked' ? state.args.count / state.rows!.length : 1
      const stored = (await countStored(state.dbName, table)) * perRecord
      if (stored !== state.args.count)
        throw new Error(`${mode}: IndexedDB holds ${stored} of ${state.args.count} records`)
    }
  } finally {
    if (mode !== 'pull') await deleteDatabase(state.dbName)
  }
}

/** Deletes every database this origin holds (a run that failed half-way leaves some). */
async function deleteAll(): Promise<number> {
  const databases = await indexedDB.databases()
  for (const { name } of databases) if (name) await Dexie.delete(name)
  return databases.length
}

const bench = { prepare, run, finish, deleteAll }
export type PageBench = typeof bench
;(globalThis as unknown as { __bench: PageBench }).__bench = bench
document.title = 'ready'
