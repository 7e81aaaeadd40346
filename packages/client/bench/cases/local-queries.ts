/**
 * Local queries over 100,000 records, in a fresh process: a client loads the project from the
 * server (untimed), pushes 1,000 records of another project, goes offline (the write path and
 * the queries alone, with an outbox as empty as a synced device's), then:
 *
 * - query: `find$({ projectId }, { orderBy: 'title', limit: 50 })`, subscribe until the first
 *   emission (ms per query); the model indexes `[projectId+title]`, the query walks that index
 *   from the project's first title and stops at 50. The same query ordered by an unindexed
 *   column (`likes`: read in full and sorted), and the same query in plain Dexie (the same
 *   compound index, `between([projectId, minKey], [projectId, maxKey]).limit(50)`) as baselines.
 * - re-emission: with the query subscribed, `update()` of a record in its window; ms from the
 *   call until the query emits the new value (the write's own transaction included).
 * - own write latency: the same against a bare Dexie `liveQuery` over the same rows (100,000 in a
 *   plain Dexie table with the same indexes) and a `put` of the record; and, as in earlier
 *   versions of this benchmark, a `find$` of 1,000 records without a limit against a Dexie
 *   `liveQuery` over the same 1,000 rows.
 */
import 'fake-indexeddb/auto'
import { Dexie, liveQuery } from 'dexie'
import { filter, firstValueFrom, type Observable } from 'rxjs'
import { io } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { schema } from '../../src/__tests__/helpers/schema.js'
import { createClient } from '../../src/core/client.js'
import { caseArgs, finish } from '../lib/child.js'
import { startProfile } from '../lib/profile.js'
import { percentile, round } from '../lib/stats.js'

interface Args {
  url: string
  projectId: string
  count: number
  samples?: number
}

const args = caseArgs<Args>()
const SAMPLES = args.samples ?? 100
const LIMIT = 50
const models = { todos: { counters: ['likes'], indexes: ['projectId', 'title', ['projectId', 'title']] } }
const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }

type Row = Record<string, unknown> & { uid: string; title: string }

const stats = (samples: number[]) => ({
  samples: samples.length,
  p50Ms: round(percentile(samples, 50)),
  p95Ms: round(percentile(samples, 95)),
})

/** Subscribes, waits for the first emission, unsubscribes: ms per query. */
async function timeFirst(make: () => Observable<unknown[]>, runs: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    await firstValueFrom(make())
    times.push(performance.now() - started)
  }
  return times
}

/** Write -> emission: `write(title)` changes a watched record; ms until `rows$` shows it. */
async function writeLatency(
  rows$: Observable<Row[]>,
  write: (title: string, i: number) => Promise<unknown>,
  label: string,
): Promise<number[]> {
  let wanted = ''
  let seen: ((at: number) => void) | null = null
  const subscription = rows$.subscribe((rows) => {
    if (seen && rows.some((row) => row.title === wanted)) {
      const done = seen
      seen = null
      done(performance.now())
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const samples: number[] = []
  for (let i = 0; i < SAMPLES + 10; i++) {
    // Titles that keep the record at the top of the window (`title` order).
    wanted = `  ${label} ${String(i).padStart(4, '0')}`
    const shown = new Promise<number>((resolve) => {
      seen = resolve
    })
    const started = performance.now()
    await write(wanted, i)
    const at = await shown
    if (i >= 10) samples.push(at - started)
  }
  subscription.unsubscribe()
  return samples
}

async function main(): Promise<void> {
  const { projectId } = args
  const socket = io(args.url, { transports: ['websocket'], forceNew: true, reconnection: false })
  const client = createClient({
    socket: socket as never,
    schema,
    models,
    dbName: `bench-queries-${uuidv7()}`,
    logger: silent,
  })
  const todos = client.collection('todos')
  const stop = todos.sync({ projectId })
  await firstValueFrom(todos.syncState$({ projectId }).pipe(filter((state) => state.synced)))
  stop()
  // 1,000 more records of another project (for the last measure), created offline and pushed in
  // batches, so that the outbox is empty when the measures start, as it is on a synced device.
  client.goOffline()
  const small = `bench-small-${uuidv7()}`
  for (let i = 0; i < 1000; i++) await todos.create({ title: `small ${i}`, projectId: small })
  client.goOnline()
  await firstValueFrom(client.status$.pipe(filter((status) => status.online && status.pending === 0)))
  client.goOffline()

  // Queries: first emission.
  const window$ = () => todos.find$({ projectId }, { orderBy: 'title', limit: LIMIT, sync: false })
  const indexed = await timeFirst(window$, 20)
  const unindexed = await timeFirst(
    () => todos.find$({ projectId }, { orderBy: 'likes', limit: LIMIT, sync: false }),
    3,
  )

  // The same rows in plain Dexie, same indexes.
  const all = (await todos.find({ projectId })) as Row[]
  if (all.length !== args.count) throw new Error(`loaded ${all.length} of ${args.count} records`)
  const raw = new Dexie(`bench-queries-raw-${uuidv7()}`)
  raw.version(1).stores({ todos: 'uid, projectId, title, [projectId+title]' })
  await raw.open()
  for (let i = 0; i < all.length; i += 1000) await raw.table('todos').bulkPut(all.slice(i, i + 1000))
  const rawTable = raw.table('todos')
  const rawWindow = () =>
    rawTable
      .where('[projectId+title]')
      .between([projectId, Dexie.minKey], [projectId, Dexie.maxKey])
      .limit(LIMIT)
      .toArray() as Promise<Row[]>
  const dexieQuery = await timeFirst(() => liveQuery(rawWindow) as unknown as Observable<Row[]>, 20)

  // Re-emission after one write, and the same write against a bare Dexie liveQuery.
  const target = (await firstValueFrom(window$()))[0] as Row
  const reemission = await writeLatency(
    window$() as Observable<Row[]>,
    (title) => todos.update(target.uid, { title }),
    'a',
  )
  const dexieWindow = await writeLatency(
    liveQuery(rawWindow) as unknown as Observable<Row[]>,
    (title) => rawTable.put({ ...target, title }),
    'b',
  )

  // 1,000 rows without a limit, as earlier versions of this benchmark measured it.
  const smallRows = (await todos.find({ projectId: small })) as Row[]
  await rawTable.bulkPut(smallRows)
  const first = smallRows[0]!
  const profiler = process.env.BENCH_CASE_PROFILE ? await startProfile() : null
  const rows1000 = await writeLatency(
    todos.find$({ projectId: small }, { sync: false }) as Observable<Row[]>,
    (title) => todos.update(first.uid, { title }),
    'c',
  )
  await profiler?.stop(`${process.env.BENCH_CASE_PROFILE}.rows1000.cpuprofile`)
  const dexie1000 = await writeLatency(
    liveQuery(() => rawTable.where('projectId').equals(small).toArray()) as unknown as Observable<Row[]>,
    (title) => rawTable.put({ ...first, title }),
    'd',
  )
  raw.close()
  await client.close()
  socket.close()

  const median = (values: number[]) => round(percentile(values, 50))
  finish({
    records: args.count,
    query: {
      limit: LIMIT,
      indexedMs: median(indexed),
      unindexedMs: median(unindexed),
      dexieIndexedMs: median(dexieQuery),
    },
    reemission: stats(reemission),
    baselineDexieLiveQueryPut: stats(dexieWindow),
    rows1000: { findWriteToEmission: stats(rows1000), dexieLiveQueryPut: stats(dexie1000) },
    ratios: {
      'dexieLiveQueryPut/reemission.p50': round(median(dexieWindow) / median(reemission)),
      'rows1000.dexieLiveQueryPut/find.p50': round(median(dexie1000) / median(rows1000)),
    },
  })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
