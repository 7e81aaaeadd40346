/**
 * @tidesync/client in Node on fake-indexeddb against a real @tidesync/server (PGlite, memory IPC)
 * on a random port:
 *
 *   npm run bench -w @tidesync/client        (tsx --conditions=source bench/client.bench.ts)
 *
 * 1. Initial sync: a client with an empty database subscribes to a subset of BENCH_RECORDS
 *    (default 10,000) records and loads it (paged pull, 1,000 records per IndexedDB transaction).
 *    The records are inserted straight into the server's tables (as an import would), so the
 *    seed does not wait on the server's per-change write path. Baselines in the same run: raw
 *    Dexie `bulkPut` of the same records in the same chunks (the local write floor) and a bare
 *    socket pulling the same pages without storing them (the server + wire floor).
 * 2. Live pushes, end to end: a bare socket pushes BENCH_PUSHES (default 1,000) single-change
 *    writes through the server; time until the subscribed client applied all of them, against a
 *    bare socket subscribed to the same subset (it only counts the `changes` events).
 * 3. Live pushes, client side only: the same 1,000 `changes` events (as the server sent them)
 *    replayed to another client's socket as fast as socket.io carries them; time until applied.
 *    Baselines: raw Dexie, one `put` transaction per record (what applying push by push costs),
 *    and one `bulkPut` of all of them (the floor for a burst).
 * 4. Write-to-emission latency: `update()` on a record of a live `find$` of 1,000 records, until the
 *    query emits the new value (BENCH_LATENCY_SAMPLES, default 200). Baselines: `table.put` under
 *    a raw Dexie `liveQuery` over the same 1,000 rows, bare and inside an explicit transaction.
 *
 * Ratios are baseline time / tidesync time (1 = as fast as the baseline, 0.5 = twice as slow).
 * Prints a summary and writes bench/results.json. Figures from fake-indexeddb are far below a
 * browser's IndexedDB (see DESIGN.md): compare the ratios, not the absolute numbers. The machine
 * may be shared: each figure is one run, not a best-of.
 */
import 'fake-indexeddb/auto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Change, type ChangesPush, HybridClock, type PullResult, type Reply } from '@tidesync/protocol'
import { tidesyncMeta } from '@tidesync/server'
import { Dexie, liveQuery } from 'dexie'
import { sql } from 'drizzle-orm'
import { filter, firstValueFrom } from 'rxjs'
import { io, type Socket } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { modelOptions, schema, todos } from '../src/__tests__/helpers/schema.js'
import { startServer, type TestServer } from '../src/__tests__/helpers/server.js'
import { createClient, type TidesyncClient } from '../src/core/client.js'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000)
const PUSHES = Number(process.env.BENCH_PUSHES ?? 1_000)
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 200)
const LATENCY_ROWS = 1_000
const CHUNK = 1_000
const silent = { debug() {}, info() {}, warn() {}, error: console.error }

type Client = TidesyncClient<typeof schema>
type Results = Record<string, number | string>
type TodoRow = typeof todos.$inferInsert & { uid: string }

const round = (value: number, digits = 2) => Number(value.toFixed(digits))
const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1000)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

function rawSocket(url: string): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], forceNew: true })
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.once('connect_error', reject)
  })
}

function request<T>(socket: Socket, event: string, payload: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    socket.emit(event, payload, (reply: Reply<T>) => {
      if (reply.error) reject(new Error(`${event}: ${reply.error.code} ${reply.error.message}`))
      else resolve(reply.result as T)
    })
  })
}

function todoRecord(projectId: string, i: number): TodoRow {
  return {
    uid: uuidv7(),
    title: `todo ${i}`,
    done: i % 3 === 0,
    projectId,
    likes: i % 7,
    dueAt: null,
    tags: null,
  }
}

/** Inserts records and their tidesync metadata straight into the server's tables. */
async function seedDirect(server: TestServer, records: TodoRow[]): Promise<void> {
  const now = new Date()
  for (let i = 0; i < records.length; i += CHUNK) {
    const chunk = records.slice(i, i + CHUNK)
    await server.db.insert(todos).values(chunk)
    await server.db.insert(tidesyncMeta).values(
      chunk.map((record) => ({
        model: 'todos',
        uid: record.uid,
        createdAt: now,
        updatedAt: now,
        rev: sql`nextval('tidesync_rev_seq')`,
        clocks: {},
      })),
    )
  }
}

/** Pushes one create per request through a bare socket, `inFlight` requests at once. */
async function pushCreates(socket: Socket, records: TodoRow[], inFlight: number): Promise<void> {
  const hlc = new HybridClock('bench01', () => Date.now())
  const changes: Change[] = records.map((record) => {
    const { dueAt: _dueAt, tags: _tags, ...data } = record
    return { id: uuidv7(), model: 'todos', uid: record.uid, op: 'create', data, clock: hlc.now() }
  })
  let next = 0
  const worker = async () => {
    while (next < changes.length) {
      const change = changes[next++]!
      await request(socket, 'sync:push', { clientId: 'bench-writer', changes: [change] })
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
}

function benchClient(url: string, online = true): Client {
  return createClient({
    url,
    schema,
    models: modelOptions,
    dbName: `bench-${uuidv7()}`,
    logger: silent,
    online,
    socketOptions: { transports: ['websocket'] },
  })
}

async function waitIdle(client: Client): Promise<void> {
  await firstValueFrom(client.status$.pipe(filter((s) => s.online && !s.syncing && s.pending === 0)))
}

/**
 * Resolves when the record `uid` is in the client's store. Live changes apply in the order they
 * arrive, so the last record of a series means the whole series. (A live count of the subset
 * would re-read it after every change and measure itself.)
 */
function whenStored(client: Client, uid: string): Promise<unknown> {
  return firstValueFrom(client.collection('todos').get$(uid).pipe(filter(Boolean)))
}

async function expectCount(client: Client, projectId: string, count: number): Promise<void> {
  const stored = (await client.collection('todos').find({ projectId })).length
  if (stored !== count) throw new Error(`${projectId}: ${stored} of ${count} records applied`)
}

/**
 * Remembers the subscription id the server gives each `subscribe` (a middleware in front of the
 * real handlers wraps the acknowledgement), so a replay can address a client's subscription.
 */
function captureSubscriptions(server: TestServer): Map<string, { subscriptionId: string; socketId: string }> {
  const byProject = new Map<string, { subscriptionId: string; socketId: string }>()
  server.io.on('connection', (socket) => {
    socket.use((packet, next) => {
      const [event, payload] = packet as [string, { where?: { projectId?: string } }]
      const ack = packet.at(-1)
      if (event === 'subscribe' && typeof ack === 'function') {
        packet[packet.length - 1] = (reply: Reply<{ subscriptionId: string }>) => {
          if (reply.result && payload?.where?.projectId) {
            byProject.set(payload.where.projectId, {
              subscriptionId: reply.result.subscriptionId,
              socketId: socket.id,
            })
          }
          ack(reply)
        }
      }
      next()
    })
  })
  return byProject
}

/** 1. Initial sync vs raw bulkPut vs a bare paged pull. */
async function initialSync(server: TestServer, results: Results): Promise<void> {
  const projectId = `bench-initial-${uuidv7()}`
  const records = Array.from({ length: RECORDS }, (_, i) => todoRecord(projectId, i))
  await seedDirect(server, records)

  // Server + wire floor: the same pages, not stored.
  const puller = await rawSocket(server.url)
  let started = performance.now()
  let checkpoint = '0'
  let pulled = 0
  for (;;) {
    const page = await request<PullResult>(puller, 'sync:pull', {
      model: 'todos',
      where: { projectId },
      checkpoint,
      limit: 1000,
    })
    pulled += page.upserts.length
    checkpoint = page.checkpoint
    if (!page.hasMore) break
  }
  const rawPullMs = performance.now() - started
  if (pulled !== RECORDS) throw new Error(`raw pull got ${pulled} records`)
  puller.close()

  // Local write floor: raw Dexie bulkPut of the same records, 1,000 per transaction.
  const raw = new Dexie(`bench-raw-${uuidv7()}`)
  raw.version(1).stores({ todos: 'uid, projectId' })
  await raw.open()
  started = performance.now()
  for (let i = 0; i < records.length; i += CHUNK)
    await raw.table('todos').bulkPut(records.slice(i, i + CHUNK))
  const bulkPutMs = performance.now() - started
  raw.close()
  await Dexie.delete(raw.name)

  const client = benchClient(server.url, false)
  let progressEvents = 0
  const progress = client.status$.subscribe((status) => {
    if (status.progress) progressEvents++
  })
  const stop = client.collection('todos').sync({ projectId })
  await client.ready
  started = performance.now()
  client.goOnline()
  await firstValueFrom(client.status$.pipe(filter((s) => s.online)))
  await client.syncNow()
  await waitIdle(client)
  const syncMs = performance.now() - started
  const count = (await client.collection('todos').find({ projectId })).length
  if (count !== RECORDS) throw new Error(`initial sync stored ${count} of ${RECORDS} records`)
  stop()
  progress.unsubscribe()
  await client.close()

  results['initialSync.records'] = RECORDS
  results['initialSync.ms'] = Math.round(syncMs)
  results['initialSync.recordsPerSec'] = perSecond(RECORDS, syncMs)
  results['initialSync.progressEvents'] = progressEvents
  results['baseline.dexieBulkPut.recordsPerSec'] = perSecond(RECORDS, bulkPutMs)
  results['baseline.rawPull.recordsPerSec'] = perSecond(RECORDS, rawPullMs)
  results['ratio.initialSync/dexieBulkPut'] = round(bulkPutMs / syncMs)
  results['ratio.initialSync/rawPull'] = round(rawPullMs / syncMs)
  results['ratio.initialSync/(rawPull+dexieBulkPut)'] = round((rawPullMs + bulkPutMs) / syncMs)
}

/** 2 and 3. Live pushes end to end, then replayed to a client as fast as the socket goes. */
async function livePushes(server: TestServer, results: Results): Promise<void> {
  const subscriptions = captureSubscriptions(server)
  const projectId = `bench-live-${uuidv7()}`
  const replayProject = `bench-replay-${uuidv7()}`
  const client = benchClient(server.url)
  const replayClient = benchClient(server.url)
  const stops = [
    client.collection('todos').sync({ projectId }),
    replayClient.collection('todos').sync({ projectId: replayProject }),
  ]
  for (const c of [client, replayClient]) {
    await firstValueFrom(c.status$.pipe(filter((status) => status.online)))
    await c.syncNow()
    await waitIdle(c)
  }

  // 2. End to end.
  const watcher = await rawSocket(server.url)
  await request(watcher, 'subscribe', { model: 'todos', where: { projectId } })
  const received: ChangesPush[] = []
  let rawDone = 0
  let receivedUpserts = 0
  watcher.on('changes', (push: ChangesPush) => {
    received.push(push)
    receivedUpserts += push.upserts.length
    if (receivedUpserts === PUSHES) rawDone = performance.now()
  })
  const records = Array.from({ length: PUSHES }, (_, i) => todoRecord(projectId, i))
  const applied = whenStored(client, records.at(-1)!.uid)
  const writer = await rawSocket(server.url)
  const started = performance.now()
  await pushCreates(writer, records, 4)
  const writesMs = performance.now() - started
  await applied
  const clientMs = performance.now() - started
  await expectCount(client, projectId, PUSHES)
  while (receivedUpserts < PUSHES) await sleep(5)
  writer.close()
  watcher.close()
  results['livePushes.count'] = PUSHES
  results['livePushes.endToEnd.ms'] = Math.round(clientMs)
  results['livePushes.endToEnd.perSec'] = perSecond(PUSHES, clientMs)
  results['livePushes.serverWrites.ms'] = Math.round(writesMs)
  results['baseline.rawSubscriber.ms'] = Math.round(rawDone - started)
  results['ratio.livePushes.endToEnd/rawSubscriber'] = round((rawDone - started) / clientMs)

  // 3. Client side only: the server's own pushes, re-addressed to the replay client's subscription.
  const target = subscriptions.get(replayProject)
  if (!target) throw new Error('no subscription captured for the replay client')
  const { subscriptionId, socketId } = target
  const replay = received.map((push) => ({
    ...push,
    subscriptionId,
    upserts: push.upserts.map((item) => ({ ...item, record: { ...item.record, projectId: replayProject } })),
  }))
  const replayApplied = whenStored(replayClient, records.at(-1)!.uid)
  const replayStarted = performance.now()
  for (const push of replay) server.io.to(socketId).emit('changes', push)
  await replayApplied
  const replayMs = performance.now() - replayStarted
  await expectCount(replayClient, replayProject, PUSHES)

  const raw = new Dexie(`bench-raw-push-${uuidv7()}`)
  raw.version(1).stores({ todos: 'uid, projectId' })
  await raw.open()
  const rawStarted = performance.now()
  for (const record of records) await raw.table('todos').put(record)
  const rawPutMs = performance.now() - rawStarted
  await raw.table('todos').clear()
  const bulkStarted = performance.now()
  await raw.table('todos').bulkPut(records)
  const rawBulkMs = performance.now() - bulkStarted
  raw.close()
  await Dexie.delete(raw.name)

  for (const stop of stops) stop()
  await Promise.all([client.close(), replayClient.close()])
  results['livePushes.clientOnly.ms'] = Math.round(replayMs)
  results['livePushes.clientOnly.perSec'] = perSecond(PUSHES, replayMs)
  results['baseline.dexiePutPerRecord.perSec'] = perSecond(PUSHES, rawPutMs)
  results['ratio.livePushes.clientOnly/dexiePutPerRecord'] = round(rawPutMs / replayMs)
  results['baseline.dexieBulkPutAll.perSec'] = perSecond(PUSHES, rawBulkMs)
  results['ratio.livePushes.clientOnly/dexieBulkPutAll'] = round(rawBulkMs / replayMs)
}

/** 4. Local write to live query emission, 1,000 rows in the query, vs raw Dexie liveQuery. */
async function writeToEmission(results: Results): Promise<void> {
  const projectId = `bench-latency-${uuidv7()}`
  // Offline (nothing listens on port 9): the write path and the live query alone.
  const client = benchClient('http://127.0.0.1:9', false)
  const todosOf = client.collection('todos')
  const local = Array.from({ length: LATENCY_ROWS }, (_, i) => todoRecord(projectId, i))
  for (const record of local) {
    const { dueAt: _dueAt, tags: _tags, ...data } = record
    await todosOf.create(data)
  }
  const target = local[0]!.uid
  let resolveEmission: ((at: number) => void) | null = null
  let wanted = ''
  const subscription = todosOf.find$({ projectId }).subscribe((rows) => {
    if (resolveEmission && rows.some((row) => row.uid === target && row.title === wanted)) {
      resolveEmission(performance.now())
      resolveEmission = null
    }
  })
  const samples: number[] = []
  for (let i = 0; i < LATENCY_SAMPLES + 10; i++) {
    wanted = `latency ${i}`
    const emitted = new Promise<number>((resolve) => {
      resolveEmission = resolve
    })
    const started = performance.now()
    await todosOf.update(target, { title: wanted })
    const at = await emitted
    if (i >= 10) samples.push(at - started) // the first few warm up
  }
  subscription.unsubscribe()
  await client.close()

  const raw = new Dexie(`bench-raw-latency-${uuidv7()}`)
  raw.version(1).stores({ todos: 'uid, projectId' })
  await raw.open()
  await raw.table('todos').bulkPut(local)
  const table = raw.table('todos')
  let rawResolve: ((at: number) => void) | null = null
  const rawSub = liveQuery(() => table.where('projectId').equals(projectId).toArray()).subscribe((rows) => {
    if (rawResolve && rows.some((row) => row.uid === target && row.title === wanted)) {
      rawResolve(performance.now())
      rawResolve = null
    }
  })
  const rawLatency = async (label: string, write: (title: string) => Promise<unknown>) => {
    const rawSamples: number[] = []
    for (let i = 0; i < LATENCY_SAMPLES + 10; i++) {
      wanted = `${label} ${i}`
      const emitted = new Promise<number>((resolve) => {
        rawResolve = resolve
      })
      const started = performance.now()
      await write(wanted)
      const at = await emitted
      if (i >= 10) rawSamples.push(at - started)
    }
    return rawSamples.sort((x, y) => x - y)
  }
  // A bare put (Dexie can answer the live query from its cache), and the same put inside an
  // explicit transaction, which is what a tidesync write needs (record, metadata and outbox
  // commit together).
  const barePut = await rawLatency('bare', (title) => table.put({ ...local[0], title }))
  const txPut = await rawLatency('tx', (title) =>
    raw.transaction('rw', table, () => table.put({ ...local[0], title })),
  )
  rawSub.unsubscribe()
  raw.close()
  await Dexie.delete(raw.name)

  samples.sort((x, y) => x - y)
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length
  results['writeToEmission.rows'] = LATENCY_ROWS
  results['writeToEmission.p50Ms'] = round(percentile(samples, 50))
  results['writeToEmission.p95Ms'] = round(percentile(samples, 95))
  results['writeToEmission.meanMs'] = round(mean(samples))
  results['baseline.dexieLiveQuery.barePut.p50Ms'] = round(percentile(barePut, 50))
  results['baseline.dexieLiveQuery.barePut.p95Ms'] = round(percentile(barePut, 95))
  results['baseline.dexieLiveQuery.txPut.p50Ms'] = round(percentile(txPut, 50))
  results['baseline.dexieLiveQuery.txPut.p95Ms'] = round(percentile(txPut, 95))
  results['ratio.writeToEmission/dexieBarePut.p50'] = round(percentile(barePut, 50) / percentile(samples, 50))
  results['ratio.writeToEmission/dexieTxPut.p50'] = round(percentile(txPut, 50) / percentile(samples, 50))
}

async function main(): Promise<void> {
  const results: Results = {
    node: process.version,
    date: new Date().toISOString(),
  }
  const server = await startServer()
  try {
    await initialSync(server, results)
    await livePushes(server, results)
  } finally {
    await server.close()
  }
  await writeToEmission(results)
  const width = Math.max(...Object.keys(results).map((key) => key.length))
  for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`)
  const file = fileURLToPath(new URL('./results.json', import.meta.url))
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`\nwrote ${file}`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
