/**
 * Live changes from another client, in a fresh process (the server runs in its own):
 *
 * - commit -> emission: a writer (a bare socket, standing for another device) updates one record
 *   at a time; the receiving client, with a live `find$` over the 1,000 records of the project,
 *   stores the change and the query emits the new value. Measured from the server's commit (the
 *   server process notes when each change was published, which it does right after the commit)
 *   to the emission, in epoch milliseconds both (`performance.timeOrigin + now()`).
 *   Baselines in the same process, one after the other: a bare socket subscribed to the project
 *   (commit -> `changes` event: the server and the wire), and the same socket storing each change
 *   with a Dexie `put` under a Dexie `liveQuery` over the same rows (commit -> emission: what a
 *   hand-written Dexie client would do).
 * - bursts: 100 changes in one push (one server transaction, one live message) and 100 pushes of
 *   one change, 4 in flight: how long until the last one is shown, and how many IndexedDB
 *   transactions the receiver used to store them.
 * - echo: a tidesync client updates a record; the server sends the change back to the writer's
 *   own subscription; the transactions that wrote the writer's record table, beyond its own
 *   write, count as echo rewrites (0 wanted).
 */
import 'fake-indexeddb/auto'
import { type Change, type ChangesPush, HybridClock, type PushResult, type Reply } from '@tidesync/protocol'
import { Dexie, liveQuery } from 'dexie'
import { filter, firstValueFrom } from 'rxjs'
import { io, type Socket } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { modelOptions, schema } from '../../src/__tests__/helpers/schema.js'
import { createClient, type TidesyncClient } from '../../src/core/client.js'
import { caseArgs, finish } from '../lib/child.js'
import { commitTimesOf } from '../lib/commit-times.js'
import { percentile, round } from '../lib/stats.js'

interface Args {
  url: string
  samples?: number
}

const args = caseArgs<Args>()
const SAMPLES = args.samples ?? 100
const ROWS = 1000
const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }
const epoch = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

type Client = TidesyncClient<typeof schema>

async function connect(): Promise<Socket> {
  const socket = io(args.url, { transports: ['websocket'], forceNew: true, reconnection: false })
  await new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(undefined))
    socket.once('connect_error', reject)
  })
  return socket
}

function request<T>(socket: Socket, event: string, payload: unknown): Promise<T> {
  return new Promise((resolve, reject) =>
    socket.emit(event, payload, (reply: Reply<T>) =>
      reply.error ? reject(new Error(`${event}: ${reply.error.message}`)) : resolve(reply.result as T),
    ),
  )
}

/** The other device: pushes changes through a bare socket. */
class Writer {
  private readonly hlc = new HybridClock('benchw', () => Date.now())
  constructor(private readonly socket: Socket) {}

  change(uid: string, patch: Record<string, string | boolean>): Change {
    return { id: uuidv7(), model: 'todos', uid, op: 'update', patch, clock: this.hlc.now() }
  }

  push(changes: Change[]): Promise<PushResult> {
    return request<PushResult>(this.socket, 'sync:push', { clientId: 'bench-live-writer', changes })
  }

  async create(projectId: string, count: number): Promise<string[]> {
    const uids = Array.from({ length: count }, () => uuidv7())
    for (let i = 0; i < count; i += 250) {
      const changes: Change[] = uids.slice(i, i + 250).map((uid, k) => ({
        id: uuidv7(),
        model: 'todos',
        uid,
        op: 'create',
        data: { uid, title: `live ${i + k}`, done: false, projectId },
        clock: this.hlc.now(),
      }))
      await this.push(changes)
    }
    return uids
  }
}

/** Counts the committed transactions that wrote a table of one database (Dexie's own event). */
function countWrites(dbName: string, table: string): { readonly count: number; stop(): void } {
  const prefix = `idb://${dbName}/${table}/`
  let count = 0
  const listener = (parts: Record<string, unknown>) => {
    if (Object.keys(parts).some((key) => key.startsWith(prefix))) count++
  }
  Dexie.on('storagemutated', listener)
  return {
    get count() {
      return count
    },
    stop: () => Dexie.on('storagemutated').unsubscribe(listener),
  }
}

function latencies(emitted: Map<string, number>, committed: Array<number | null>, uids: string[]): number[] {
  return uids.flatMap((uid, i) => {
    const at = emitted.get(uid)
    const commit = committed[i]
    return at !== undefined && commit !== null && commit !== undefined ? [at - commit] : []
  })
}

function stats(samples: number[]) {
  return {
    samples: samples.length,
    p50Ms: round(percentile(samples, 50)),
    p95Ms: round(percentile(samples, 95)),
  }
}

async function receiver(projectId: string): Promise<{ client: Client; socket: Socket; dbName: string }> {
  const socket = await connect()
  const dbName = `bench-live-${uuidv7()}`
  const client = createClient({
    socket: socket as never,
    schema,
    models: modelOptions,
    dbName,
    logger: silent,
  })
  // Kept in sync (live changes included) until the client closes.
  client.collection('todos').sync({ projectId })
  await firstValueFrom(
    client
      .collection('todos')
      .syncState$({ projectId })
      .pipe(filter((s) => s.synced)),
  )
  return { client, socket, dbName }
}

async function main(): Promise<void> {
  const log = (...a: unknown[]) => process.env.DEBUG_CASE && console.error(...a)
  const writerSocket = await connect()
  const writer = new Writer(writerSocket)
  const projectId = `bench-live-${uuidv7()}`
  const uids = await writer.create(projectId, ROWS)
  log('created')
  const { client, socket, dbName } = await receiver(projectId)
  const todos = client.collection('todos')
  log('receiver synced')

  // 1. commit -> emission, one change at a time.
  const emitted = new Map<string, number>()
  const wanted = new Map<string, string>()
  let arrived: (() => void) | null = null
  const subscription = todos.find$({ projectId }).subscribe((rows) => {
    const at = epoch()
    for (const row of rows) {
      if (wanted.get(row.uid) === row.title && !emitted.has(row.uid)) {
        emitted.set(row.uid, at)
        arrived?.()
      }
    }
  })
  await sleep(200)
  const sampled = uids.slice(0, SAMPLES + 10)
  for (const [i, uid] of sampled.entries()) {
    const title = `sample ${i}`
    wanted.set(uid, title)
    const shown = new Promise<void>((resolve) => {
      arrived = resolve
    })
    await writer.push([writer.change(uid, { title })])
    await shown
    await sleep(5)
  }
  log('sampled')
  const measured = sampled.slice(10) // the first ones warm up
  const tidesync = latencies(emitted, await commitTimesOf(args.url, measured), measured)

  // 2. Bursts: 100 changes in one push, then 100 pushes of one change.
  const burst = async (changes: Change[], send: (changes: Change[]) => Promise<unknown>) => {
    const writes = countWrites(dbName, 'r_todos')
    emitted.clear()
    for (const change of changes) wanted.set(change.uid, (change as { patch: { title: string } }).patch.title)
    const all = new Promise<void>((resolve) => {
      arrived = () => {
        if (changes.every((change) => emitted.has(change.uid))) resolve()
      }
    })
    await send(changes)
    log('sent', changes.length)
    const timer = setInterval(() => log('emitted', changes.filter((c) => emitted.has(c.uid)).length), 2000)
    await all
    clearInterval(timer)
    await sleep(100)
    writes.stop()
    const burstUids = changes.map((change) => change.uid)
    const committed = await commitTimesOf(args.url, burstUids)
    const first = Math.min(...committed.map((at) => at ?? Number.POSITIVE_INFINITY))
    const last = Math.max(...burstUids.map((uid) => emitted.get(uid) ?? Number.NaN))
    return {
      changes: changes.length,
      firstCommitToLastEmissionMs: round(last - first),
      transactions: writes.count,
    }
  }
  const onePush = await burst(
    uids.slice(200, 300).map((uid, i) => writer.change(uid, { title: `burst ${i}` })),
    (changes) => writer.push(changes),
  )
  const manyPushes = await burst(
    uids.slice(300, 400).map((uid, i) => writer.change(uid, { title: `pushes ${i}` })),
    async (changes) => {
      let next = 0
      const worker = async () => {
        while (next < changes.length) await writer.push([changes[next++]!])
      }
      await Promise.all([worker(), worker(), worker(), worker()])
    },
  )
  subscription.unsubscribe()
  const stored = await todos.find({ projectId })
  await client.close()
  socket.close()

  // 3. Baselines: the bare subscribed socket, and Dexie put + liveQuery on each change.
  log('bursts done')
  const bare = await connect()
  log('bare connected')
  await request(bare, 'subscribe', { model: 'todos', where: { projectId } })
  const raw = new Dexie(`bench-live-raw-${uuidv7()}`)
  raw.version(1).stores({ todos: 'uid, projectId' })
  await raw.open()
  await raw.table('todos').bulkPut(stored)
  const socketAt = new Map<string, number>()
  const dexieAt = new Map<string, number>()
  bare.on('changes', (push: ChangesPush) => {
    const at = epoch()
    for (const upsert of push.upserts) socketAt.set(upsert.record.uid, at)
    void raw.table('todos').bulkPut(push.upserts.map((upsert) => upsert.record))
  })
  const rawTable = raw.table('todos')
  const rawQuery = liveQuery(() => rawTable.where('projectId').equals(projectId).toArray()).subscribe(
    (rows) => {
      const at = epoch()
      for (const row of rows) {
        if (wanted.get(row.uid) === row.title && !dexieAt.has(row.uid)) {
          dexieAt.set(row.uid, at)
          arrived?.()
        }
      }
    },
  )
  log('baseline ready')
  await sleep(200)
  const baseline = uids.slice(500, 500 + SAMPLES + 10)
  for (const [i, uid] of baseline.entries()) {
    const title = `baseline ${i}`
    wanted.set(uid, title)
    const shown = new Promise<void>((resolve) => {
      arrived = resolve
    })
    await writer.push([writer.change(uid, { title })])
    await shown
    await sleep(5)
  }
  rawQuery.unsubscribe()
  const baselineMeasured = baseline.slice(10)
  const baselineCommits = await commitTimesOf(args.url, baselineMeasured)
  bare.close()
  raw.close()

  // 4. The writer's echo.
  log('baseline done')
  const echo = await echoRewrites(projectId, uids[900]!)
  writerSocket.close()

  finish({
    commitToEmission: stats(tidesync),
    baselineBareSocket: stats(latencies(socketAt, baselineCommits, baselineMeasured)),
    baselineDexiePutLiveQuery: stats(latencies(dexieAt, baselineCommits, baselineMeasured)),
    burstOnePush: onePush,
    burstManyPushes: manyPushes,
    echo,
  })
}

/** A tidesync writer updates a record; counts the writes of its record table after its own. */
async function echoRewrites(
  projectId: string,
  uid: string,
): Promise<{ ownWrites: number; echoRewrites: number }> {
  const { client, socket, dbName } = await receiver(projectId)
  const echoed = new Promise<void>((resolve) => {
    socket.on('changes', (push: ChangesPush) => {
      if (push.upserts.some((upsert) => upsert.record.uid === uid)) resolve()
    })
  })
  await sleep(100)
  const writes = countWrites(dbName, 'r_todos')
  await client.collection('todos').update(uid, { title: 'echo' })
  const ownWrites = writes.count
  await echoed
  await firstValueFrom(client.status$.pipe(filter((s) => !s.syncing && s.pending === 0)))
  await sleep(300)
  writes.stop()
  const result = { ownWrites, echoRewrites: writes.count - ownWrites }
  await client.close()
  socket.close()
  return result
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
