/**
 * One initial sync in a fresh process (the bench server runs in another one):
 *
 * - `tidesync`: a client with an empty database subscribes to `{ projectId }` and loads it; timed
 *   from the subscription until the subset reports `synced` (every record stored, checkpoint
 *   kept). The socket is connected beforehand, as RxDB's is in its case.
 * - `dexie`: the floor for the local writes: the same records, pulled untimed beforehand and
 *   decoded as the client stores them, written with a plain Dexie `bulkPut` per 1,000 records
 *   into a table with the same indexes.
 * - `replay`: tidesync against the same pages replayed by a socket.io server in this process,
 *   recorded from the real server beforehand (untimed): the client's whole sync (socket,
 *   parsing, decoding, IndexedDB) with a server that costs what the RxDB peer's costs (a slice
 *   of an in-memory array), so the two compare like for like.
 * - `pull`: the floor for the server and the wire: the same pages pulled over a bare socket (in
 *   columns, as the client asks for them), parsed and dropped.
 *
 * Each first runs the same work on a small warm-up project (JIT, connection), untimed.
 */
import 'fake-indexeddb/auto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { PullResult, Reply } from '@tidesync/protocol'
import { Dexie } from 'dexie'
import { filter, firstValueFrom } from 'rxjs'
import { Server } from 'socket.io'
import { io, type Socket } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { modelOptions, schema } from '../../src/__tests__/helpers/schema.js'
import type { createClient as CreateClient } from '../../src/core/client.js'
import { fromWire } from '../../src/core/schema/codec.js'
import { type ModelInfo, readSchema } from '../../src/core/schema/model.js'
import { upsertsOf } from '../../src/core/sync/columnar.js'
import { caseArgs, finish } from '../lib/child.js'
import { startProfile } from '../lib/profile.js'
import { peakRssMb } from '../lib/stats.js'

interface Args {
  mode: 'tidesync' | 'replay' | 'dexie' | 'pull'
  url: string
  projectId: string
  count: number
  warmProjectId: string
  warmCount: number
}

const args = caseArgs<Args>()
const [todosModel] = readSchema({ todos: schema.todos }, modelOptions) as [ModelInfo]
const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }

async function connect(url: string): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false })
  await new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(undefined))
    socket.once('connect_error', reject)
  })
  return socket
}

/** Every page of `{ projectId }` over a bare socket; `keep` gets each page. */
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
        { model: 'todos', where: { projectId }, checkpoint, limit: 1000, format: 'columns' },
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

async function tidesync(projectId: string, count: number, url = args.url): Promise<number> {
  const modulePath = process.env.BENCH_CLIENT_MODULE ?? '../../src/core/client.js'
  const { createClient } = (await import(modulePath)) as { createClient: typeof CreateClient }
  const socket = await connect(url)
  const client = createClient({
    socket: socket as never,
    schema,
    models: modelOptions,
    dbName: `bench-${uuidv7()}`,
    logger: silent,
  })
  await client.ready
  await firstValueFrom(client.status$.pipe(filter((s) => s.online && !s.syncing)))
  const started = performance.now()
  const synced = firstValueFrom(
    client
      .collection('todos')
      .syncState$({ projectId })
      .pipe(filter((state) => state.synced || state.error !== null)),
  )
  const state = await synced
  const ms = performance.now() - started
  if (state.error) throw state.error
  const stored = await client.collection('todos').find({ projectId }, { limit: count + 1 })
  if (stored.length !== count) throw new Error(`stored ${stored.length} of ${count} records`)
  await client.close()
  socket.close()
  return ms
}

/** Records every page of `projectId` from the real server, then serves them from memory. */
async function replay(projectId: string, count: number): Promise<number> {
  const socket = await connect(args.url)
  const pages = new Map<string, PullResult>()
  let checkpoint = '0'
  for (;;) {
    const page = await new Promise<PullResult>((resolve, reject) =>
      socket.emit(
        'sync:pull',
        { model: 'todos', where: { projectId }, checkpoint, limit: 1000, format: 'columns' },
        (reply: Reply<PullResult>) =>
          reply.error ? reject(new Error(reply.error.message)) : resolve(reply.result!),
      ),
    )
    pages.set(checkpoint, page)
    checkpoint = page.checkpoint
    if (!page.hasMore) break
  }
  socket.close()
  pages.set(checkpoint, {
    ...pages.get('0')!,
    upserts: [],
    columns: undefined,
    hasMore: false,
    remaining: 0,
    checkpoint,
  })
  const http = createServer()
  const server = new Server(http, { serveClient: false, maxHttpBufferSize: 64e6 })
  server.on('connection', (client) => {
    client.on('subscribe', (_: unknown, ack: (reply: unknown) => void) =>
      ack({ result: { subscriptionId: 'replayed' } }),
    )
    client.on('unsubscribe', (_: unknown, ack: (reply: unknown) => void) => ack({ result: {} }))
    client.on('sync:pull', (request: { checkpoint: string }, ack: (reply: unknown) => void) => {
      const page = pages.get(request.checkpoint)
      ack(page ? { result: page } : { error: { code: 'BAD_REQUEST', message: 'not recorded' } })
    })
  })
  http.listen(0, '127.0.0.1')
  await new Promise((resolve) => http.once('listening', resolve))
  try {
    return await tidesync(projectId, count, `http://127.0.0.1:${(http.address() as AddressInfo).port}`)
  } finally {
    server.close()
  }
}

async function dexie(projectId: string, count: number): Promise<number> {
  const [model] = readSchema({ todos: schema.todos }, modelOptions)
  const socket = await connect(args.url)
  const rows: Record<string, unknown>[][] = []
  await pullAll(socket, projectId, (page) =>
    rows.push(page.upserts.map((item) => fromWire(model!, item.record))),
  )
  socket.close()
  const db = new Dexie(`bench-dexie-${uuidv7()}`)
  db.version(1).stores({ todos: ['uid', ...modelOptions.todos.indexes].join(', ') })
  await db.open()
  const started = performance.now()
  for (const chunk of rows) await db.table('todos').bulkPut(chunk)
  const ms = performance.now() - started
  if ((await db.table('todos').count()) !== count) throw new Error('bulkPut lost records')
  db.close()
  return ms
}

async function pull(projectId: string, count: number): Promise<number> {
  const socket = await connect(args.url)
  const started = performance.now()
  const pulled = await pullAll(socket, projectId)
  const ms = performance.now() - started
  if (pulled !== count) throw new Error(`pulled ${pulled} of ${count} records`)
  socket.close()
  return ms
}

const run = { tidesync, replay, dexie, pull }[args.mode]
await run(args.warmProjectId, args.warmCount)
globalThis.gc?.()
// BENCH_CASE_PROFILE=<file>: a V8 CPU profile of the timed run only (the README's profiles).
const profiler = process.env.BENCH_CASE_PROFILE ? await startProfile() : null
const cpu = process.cpuUsage()
const ms = await run(args.projectId, args.count)
const used = process.cpuUsage(cpu)
await profiler?.stop(`${process.env.BENCH_CASE_PROFILE}.${args.mode}.cpuprofile`)
finish({ ms, cpuMs: (used.user + used.system) / 1000, peakRssMb: peakRssMb() })
