/**
 * The peer: RxDB 17's replication into its Dexie storage on fake-indexeddb, fed by a socket.io
 * server in this process that answers checkpoint pulls from records held in memory (RxDB's
 * documented "custom replication" shape: `pull.handler` = an acknowledged socket request,
 * `pull.stream$` = the server's live pushes). The records have the shape the tidesync cases
 * sync (todos: uid, title, done, projectId, likes, dueAt, tags), plus RxDB's checkpoint field.
 *
 * - initial: from `replicateRxCollection()` until `awaitInitialReplication()` (every record
 *   written), 1,000 records per pull, the socket connected beforehand.
 * - live: 100 records changed on the server and pushed on the socket in one message (RxDB's
 *   `stream$`), until RxDB has written all of them (`received$`).
 *
 * rxdb is a devDependency of the benchmark only; nothing in `src/` imports it. Dev-mode and
 * schema validation are off, as in production.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { IDBKeyRange, indexedDB } from 'fake-indexeddb'
import { createRxDatabase } from 'rxdb/plugins/core'
import { replicateRxCollection } from 'rxdb/plugins/replication'
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie'
import { Subject } from 'rxjs'
import { Server } from 'socket.io'
import { io } from 'socket.io-client'
import { caseArgs, finish } from '../lib/child.js'
import { peakRssMb } from '../lib/stats.js'

interface Args {
  count: number
  warmCount: number
  liveCount: number
}

interface Doc {
  uid: string
  title: string
  done: boolean
  projectId: string
  likes: number
  dueAt: string | null
  tags: string[] | null
  updatedAt: number
}

interface Checkpoint {
  uid: string
  updatedAt: number
}

const args = caseArgs<Args>()

/** The server's records, ordered by (updatedAt, uid): a pull is a binary search and a slice. */
let docs: Doc[] = []
let clock = 1_700_000_000_000

function seed(count: number, projectId: string): void {
  docs = Array.from({ length: count }, (_, i) => ({
    uid: `${projectId}-${String(i).padStart(8, '0')}`,
    title: `todo ${i}`,
    done: i % 3 === 0,
    projectId,
    likes: i % 7,
    dueAt: null,
    tags: null,
    updatedAt: ++clock,
  }))
}

function after(checkpoint: Checkpoint | undefined): number {
  if (!checkpoint) return 0
  let low = 0
  let high = docs.length
  while (low < high) {
    const middle = (low + high) >>> 1
    const doc = docs[middle]!
    const before =
      doc.updatedAt < checkpoint.updatedAt ||
      (doc.updatedAt === checkpoint.updatedAt && doc.uid <= checkpoint.uid)
    if (before) low = middle + 1
    else high = middle
  }
  return low
}

const http = createServer()
const server = new Server(http, { serveClient: false, maxHttpBufferSize: 64e6 })
server.on('connection', (socket) => {
  socket.on(
    'pull',
    (request: { checkpoint?: Checkpoint; batchSize: number }, ack: (answer: unknown) => void) => {
      const start = after(request.checkpoint)
      const documents = docs.slice(start, start + request.batchSize)
      const last = documents.at(-1)
      ack({
        documents,
        checkpoint: last ? { uid: last.uid, updatedAt: last.updatedAt } : (request.checkpoint ?? null),
      })
    },
  )
})
http.listen(0, '127.0.0.1')
await new Promise((resolve) => http.once('listening', resolve))
const socket = io(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, {
  transports: ['websocket'],
  reconnection: false,
})
await new Promise((resolve) => socket.once('connect', resolve))

const schema = {
  version: 0,
  primaryKey: 'uid',
  type: 'object',
  properties: {
    uid: { type: 'string', maxLength: 64 },
    title: { type: 'string' },
    done: { type: 'boolean' },
    projectId: { type: 'string' },
    likes: { type: 'integer' },
    dueAt: { type: ['string', 'null'] },
    tags: { type: ['array', 'null'], items: { type: 'string' } },
    updatedAt: { type: 'number' },
  },
  required: ['uid', 'title', 'done', 'projectId', 'likes', 'updatedAt'],
} as const

async function sync(
  count: number,
  projectId: string,
): Promise<{ initialMs: number; liveMs: number; cpuMs: number }> {
  seed(count, projectId)
  const db = await createRxDatabase({
    name: `rx${process.pid}${projectId.replace(/\W/g, '')}`,
    storage: getRxStorageDexie({ indexedDB, IDBKeyRange }),
    multiInstance: false,
  })
  await db.addCollections({ todos: { schema } })
  const stream$ = new Subject<{ documents: Doc[]; checkpoint: Checkpoint }>()
  const onChanges = (push: { documents: Doc[]; checkpoint: Checkpoint }) => stream$.next(push)
  socket.on('changes', onChanges)
  const cpu = process.cpuUsage()
  const started = performance.now()
  const replication = replicateRxCollection<Doc, Checkpoint>({
    collection: db.todos,
    replicationIdentifier: `bench-${projectId}`,
    live: true,
    waitForLeadership: false,
    pull: {
      batchSize: 1000,
      handler: (checkpoint, batchSize) =>
        socket.timeout(60_000).emitWithAck('pull', { checkpoint, batchSize }),
      stream$: stream$.asObservable(),
    },
  })
  const failed = new Promise<never>((_, reject) => replication.error$.subscribe(reject))
  await Promise.race([replication.awaitInitialReplication(), failed])
  const initialMs = performance.now() - started
  const used = process.cpuUsage(cpu)
  if ((await db.todos.count().exec()) !== count) throw new Error('RxDB stored a different number of records')
  await Promise.race([replication.awaitInSync(), failed])

  // Live: records changed on the server, pushed in one message.
  const step = Math.floor(count / args.liveCount)
  const changed: Doc[] = []
  for (let k = 0; k < args.liveCount; k++) {
    const [doc] = docs.splice(k * step - k, 1)
    changed.push({ ...doc!, title: `edited ${k}`, done: !doc!.done, updatedAt: ++clock })
  }
  docs.push(...changed)
  let received = 0
  const all = new Promise<void>((resolve) => {
    const subscription = replication.received$.subscribe(() => {
      if (++received === changed.length) {
        subscription.unsubscribe()
        resolve()
      }
    })
  })
  const liveStarted = performance.now()
  const last = changed.at(-1)!
  server.emit('changes', { documents: changed, checkpoint: { uid: last.uid, updatedAt: last.updatedAt } })
  await Promise.race([all, failed])
  const liveMs = performance.now() - liveStarted
  await replication.cancel()
  socket.off('changes', onChanges)
  await db.remove()
  return { initialMs, liveMs, cpuMs: (used.user + used.system) / 1000 }
}

await sync(args.warmCount, 'warm')
globalThis.gc?.()
const result = await sync(args.count, 'measured')
socket.close()
server.close()
finish({ ms: result.initialMs, cpuMs: result.cpuMs, liveMs: result.liveMs, peakRssMb: peakRssMb() })
