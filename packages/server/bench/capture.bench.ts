/**
 * Change capture: how fast writes made by plain SQL reach a subscribed client, and what capture
 * costs the writer.
 *
 *   npm run bench -w @tidesync/server   (runs sync.bench.ts, then this: tsx --conditions=source bench/capture.bench.ts)
 *
 * Needs PostgreSQL (127.0.0.1:5432 or DATABASE_URL; skipped with a reason when unreachable). Each
 * case gets its own throwaway database (createTestDatabase). Each figure is the median of
 * BENCH_CAPTURE_RUNS (default 5) runs, with the min and max of the runs, after a warm-up:
 *
 * 1. `latency`: a real `installTidesync` server (socket.io on a random port, memory IPC, capture
 *    on) and a bare socket.io client subscribed to `todos` (the protocol's `subscribe`, as the
 *    other server benches and tests speak it; the client package's own write-to-emission cost
 *    is in its bench). A separate `pg` connection runs BENCH_CAPTURE_SAMPLES (default 200)
 *    single-row `UPDATE ... SET title` per run, one at a time (autocommit): latency = from the
 *    UPDATE returning (its COMMIT is done) to the client's `changes` event carrying the new
 *    title. Baseline, alternating one for one with the SQL writes: the same edit pushed through
 *    tidesync by another socket (`sync:push` of one update), from sending it to the same event
 *    (tidesync publishes before it acknowledges, so its ack arrives after the event).
 * 2. `throughput`: 20 x 1,000-row `UPDATE`s, and 20 x 1,000-row multi-row `INSERT`s, by SQL on
 *    one connection, back to back; captured changes per second = 20,000 / the time from the
 *    first statement until the subscribed client has received all 20,000. Also recorded: when
 *    the writer was done and when the capture reader had published the last change (an IPC
 *    subscriber on the model's channel). Baseline: 2 `sync:push`es of 1,000 updates from
 *    another socket, until the client has them.
 * 3. `cost`: what capture adds to the writer, on PostgreSQL and on PGlite. The same rows in
 *    `todos` (capture triggers) and `todos_plain` (the same table, no triggers): a single-row
 *    UPDATE (autocommit, 100 per run) and a 1,000-row UPDATE (3 per run), ms per statement,
 *    taking turns statement by statement between plain / capture on / triggers present with
 *    `tidesync.capture = 'off'` (what tidesync's own write transactions pay). No capture reader
 *    runs here: the writer's own time is measured. Ratio = capture / plain per run.
 * 4. `push`: push-bench.ts (the `push` figures of results.json) on PostgreSQL, first without
 *    capture triggers (before), then on the same database with them (after): capture must not
 *    slow tidesync's own writes (they set capture off, but the statement triggers still fire).
 *    Also reported beside them: the `push` figures sync.bench.ts wrote (in `npm run bench`,
 *    minutes earlier; their date says when). Each run of the push bench takes about 40 s:
 *    BENCH_CAPTURE_PUSH_BEFORE=0 skips the before, BENCH_CAPTURE_PUSH_ROUNDS=n alternates n
 *    rounds. The `cost` case's `captureOff` figures measure the same overhead per statement.
 *
 * Writes bench/results.json under `capture`, keeping the other sections. Env: BENCH_CAPTURE_RUNS,
 * BENCH_CAPTURE_SAMPLES, BENCH_CAPTURE_PUSH_BEFORE, BENCH_CAPTURE_PUSH_ROUNDS, BENCH_CAPTURE_CASES (default
 * `latency,throughput,cost,push`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { PGlite } from '@electric-sql/pglite'
import { createIpc, type Ipc } from '@tidesync/ipc'
import type { Change, ChangesPush, LiveMessage, PushResult, Reply } from '@tidesync/protocol'
import {
  createTidesync,
  ensureSchema,
  HybridClock,
  installTidesync,
  noopLogger,
  type TidesyncDb,
  type TidesyncServer,
} from '@tidesync/server'
import { createTestDatabase, databaseUrl, probePostgres } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { Server } from 'socket.io'
import { io as connect, type Socket } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { todos, todosDdl } from '../src/__tests__/fixtures/schema.js'
import { type PushBenchResult, pushSummary, pushTable, runPushBench } from './push-bench.js'

const RUNS = Number(process.env.BENCH_CAPTURE_RUNS ?? 5)
const SAMPLES = Number(process.env.BENCH_CAPTURE_SAMPLES ?? 200)
const CASES = new Set(
  (process.env.BENCH_CAPTURE_CASES ?? 'latency,throughput,cost,push').split(',').map((c) => c.trim()),
)
const STATEMENTS = 20
const ROWS_PER_STATEMENT = 1000
const BASELINE_PUSHES = 2
const SINGLE_PER_RUN = 100
const BULK_PER_RUN = 3
const COST_ROWS = 10_000
/** Rounds of the push case (after, or before then after): each run of the push bench is about 40 s. */
const PUSH_ROUNDS = Number(process.env.BENCH_CAPTURE_PUSH_ROUNDS ?? 1)
const PUSH_BEFORE = process.env.BENCH_CAPTURE_PUSH_BEFORE !== '0'
const RESULTS_URL = new URL('./results.json', import.meta.url)
const GOALS = { latencyP50Ms: 10, latencyP99Ms: 50, changesPerSec: 6000, costRatio: 2 }

// Figures ----------------------------------------------------------------------------------------

interface Spread {
  median: number
  min: number
  max: number
  runs: number
}

function spread(values: number[], digits = 2): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length / 2
  const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return {
    median: round(median, digits),
    min: round(sorted[0]!, digits),
    max: round(sorted[sorted.length - 1]!, digits),
    runs: sorted.length,
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits))
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)
}

function show(s: Spread, unit = ' ms'): string {
  const f =
    unit === ' ms'
      ? fmt
      : unit === 'x'
        ? (n: number) => n.toFixed(2)
        : (n: number) => Math.round(n).toLocaleString('en-US')
  return `${f(s.median)}${unit} (${f(s.min)}-${f(s.max)})`
}

const met = (ok: boolean) => (ok ? 'met' : 'MISSED')

// Databases and the live server -----------------------------------------------------------------

interface PgDatabase {
  url: string
  db: TidesyncDb
  close(): Promise<void>
}

async function postgresDatabase(): Promise<PgDatabase> {
  const database = await createTestDatabase('tidesync_capture_bench')
  const pool = new pg.Pool({ connectionString: database.url, max: 8 })
  const db = drizzleNodePg(pool) as unknown as TidesyncDb
  await ensureSchema(db)
  await db.execute(sql.raw(todosDdl))
  return {
    url: database.url,
    db,
    close: async () => {
      await pool.end()
      await database.drop()
    },
  }
}

async function pgClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

/** Inserts `n` records with their metadata, as a load made before capture would (capture off in the transaction). */
async function seed(query: (text: string) => Promise<unknown>, table: string, n: number): Promise<void> {
  await query('BEGIN')
  await query(`SELECT set_config('tidesync.capture', 'off', true)`)
  await query(`
    INSERT INTO ${table} (uid, owner_id, title, done, priority, likes, due_at)
    SELECT gen_random_uuid(), 'u' || (i % 50), 'todo number ' || i, i % 3 = 0, i % 10, i % 7,
      timestamptz '2026-01-01' + i * interval '1 minute'
    FROM generate_series(1, ${n}) AS i`)
  await query(`
    INSERT INTO tidesync_meta (model, uid, created_at, updated_at, rev, clocks)
    SELECT 'todos', uid::text, timestamptz '2026-01-01', timestamptz '2026-01-01', nextval('tidesync_rev_seq'), '{}'
    FROM ${table} ON CONFLICT DO NOTHING`)
  await query('COMMIT')
  await query(`ANALYZE ${table}`)
}

interface LiveServer {
  url: string
  ipc: Ipc
  tidesync: TidesyncServer
  close(): Promise<void>
}

async function startServer(db: TidesyncDb): Promise<LiveServer> {
  const ipc = await createIpc({ driver: 'memory' })
  const http = createServer()
  const io = new Server(http, { maxHttpBufferSize: 32e6 })
  const tidesync = await installTidesync(io, {
    db,
    ipc,
    logger: noopLogger,
    maxChangesPerPush: ROWS_PER_STATEMENT,
    models: { todos: { table: todos, counters: ['likes'] } },
    capture: true,
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    ipc,
    tidesync,
    close: async () => {
      await tidesync.close()
      await new Promise<void>((resolve) => io.close(() => resolve()))
      await ipc.close()
    },
  }
}

async function socketTo(url: string): Promise<Socket> {
  const socket = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', reject)
  })
  return socket
}

function request<T>(socket: Socket, event: string, payload: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    socket.timeout(30_000).emit(event, payload, (error: Error | null, reply: Reply<T>) => {
      if (error) reject(error)
      else if (reply.error) reject(new Error(`${event}: ${reply.error.code} ${reply.error.message}`))
      else resolve(reply.result as T)
    })
  })
}

/** A client socket subscribed to every todo: hands each `changes` event, with its arrival time, to `listener`. */
async function subscriber(
  url: string,
): Promise<{ socket: Socket; listen(fn: (push: ChangesPush, at: number) => void): void }> {
  const socket = await socketTo(url)
  let listener: (push: ChangesPush, at: number) => void = () => {}
  socket.on('changes', (push: ChangesPush) => listener(push, performance.now()))
  await request(socket, 'subscribe', { model: 'todos' })
  return { socket, listen: (fn) => (listener = fn) }
}

function expectApplied(result: PushResult, n: number): void {
  const applied = result.outcomes.filter((o) => o.status === 'applied').length
  if (applied !== n)
    throw new Error(`push: ${applied} of ${n} applied: ${JSON.stringify(result.outcomes[0])}`)
}

async function uidsOf(client: pg.Client, where: string): Promise<string[]> {
  const { rows } = await client.query<{ uid: string }>(`SELECT uid FROM todos WHERE ${where} ORDER BY uid`)
  return rows.map((r) => r.uid)
}

/** Rejects after `ms`, so a lost change fails the bench instead of hanging it. */
function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

// 1. Latency -------------------------------------------------------------------------------------

interface LatencyRun {
  sqlFromCommit: number[]
  sqlFromSend: number[]
  sqlWriter: number[]
  pushFromAck: number[]
  pushFromSend: number[]
}

interface LatencyResult {
  samples: number
  runs: number
  sqlP50: Spread
  sqlP99: Spread
  sqlFromSendP50: Spread
  sqlFromSendP99: Spread
  sqlWriterP50: Spread
  pushFromAckP50: Spread
  pushFromAckP99: Spread
  pushFromSendP50: Spread
  pushFromSendP99: Spread
}

async function runLatency(pgdb: PgDatabase, server: LiveServer): Promise<LatencyResult> {
  const writer = await pgClient(pgdb.url)
  const sub = await subscriber(server.url)
  const pusher = await socketTo(server.url)
  const hlc = new HybridClock('benchpush', () => Date.now())
  try {
    // Disjoint records for the two writers: a push's clock never races a captured one.
    const all = await uidsOf(writer, 'true')
    const sqlUids = all.slice(0, 1000)
    const pushUids = all.slice(1000, 2000)
    let waiting: { uid: string; title: string; resolve: (at: number) => void } | undefined
    sub.listen((push, at) => {
      if (!waiting) return
      for (const { record } of push.upserts) {
        if (record.uid === waiting.uid && record.title === waiting.title) {
          const w = waiting
          waiting = undefined
          w.resolve(at)
          return
        }
      }
    })
    const seen = (uid: string, title: string) =>
      deadline(
        new Promise<number>((resolve) => {
          waiting = { uid, title, resolve }
        }),
        10_000,
        `the client seeing ${title}`,
      )

    const oneRun = async (run: number, samples: number): Promise<LatencyRun> => {
      const out: LatencyRun = {
        sqlFromCommit: [],
        sqlFromSend: [],
        sqlWriter: [],
        pushFromAck: [],
        pushFromSend: [],
      }
      for (let i = 0; i < samples; i++) {
        // By SQL.
        let uid = sqlUids[i % sqlUids.length]!
        let title = `sql ${run}.${i}`
        let arrival = seen(uid, title)
        const start = performance.now()
        await writer.query('UPDATE todos SET title = $1 WHERE uid = $2', [title, uid])
        const committed = performance.now()
        const at = await arrival
        out.sqlFromCommit.push(at - committed)
        out.sqlFromSend.push(at - start)
        out.sqlWriter.push(committed - start)
        // Through tidesync.
        uid = pushUids[i % pushUids.length]!
        title = `push ${run}.${i}`
        arrival = seen(uid, title)
        const change: Change = {
          id: uuidv7(),
          model: 'todos',
          uid,
          op: 'update',
          patch: { title },
          clock: hlc.now(),
        }
        const sent = performance.now()
        const result = await request<PushResult>(pusher, 'sync:push', {
          clientId: 'bench-pusher',
          changes: [change],
        })
        const acked = performance.now()
        expectApplied(result, 1)
        const pushedAt = await arrival
        out.pushFromAck.push(pushedAt - acked)
        out.pushFromSend.push(pushedAt - sent)
      }
      return out
    }

    await oneRun(-1, 20) // warm-up
    const runs: LatencyRun[] = []
    for (let r = 0; r < RUNS; r++) {
      const run = await oneRun(r, SAMPLES)
      runs.push(run)
      const p = (xs: number[], q: number) =>
        fmt(
          percentile(
            [...xs].sort((a, b) => a - b),
            q,
          ),
        )
      console.log(
        `  latency run ${r + 1}: SQL p50 ${p(run.sqlFromCommit, 50)} / p99 ${p(run.sqlFromCommit, 99)} ms; ` +
          `push (from ack) p50 ${p(run.pushFromAck, 50)} / p99 ${p(run.pushFromAck, 99)} ms`,
      )
    }
    const per = (pick: (r: LatencyRun) => number[], q: number) =>
      spread(
        runs.map((r) =>
          percentile(
            [...pick(r)].sort((a, b) => a - b),
            q,
          ),
        ),
      )
    return {
      samples: SAMPLES,
      runs: RUNS,
      sqlP50: per((r) => r.sqlFromCommit, 50),
      sqlP99: per((r) => r.sqlFromCommit, 99),
      sqlFromSendP50: per((r) => r.sqlFromSend, 50),
      sqlFromSendP99: per((r) => r.sqlFromSend, 99),
      sqlWriterP50: per((r) => r.sqlWriter, 50),
      pushFromAckP50: per((r) => r.pushFromAck, 50),
      pushFromAckP99: per((r) => r.pushFromAck, 99),
      pushFromSendP50: per((r) => r.pushFromSend, 50),
      pushFromSendP99: per((r) => r.pushFromSend, 99),
    }
  } finally {
    sub.socket.disconnect()
    pusher.disconnect()
    await writer.end()
  }
}

// 2. Throughput ----------------------------------------------------------------------------------

interface ThroughputRun {
  changes: number
  /** First statement sent -> last statement returned. */
  writerMs: number
  /** First statement sent -> the reader published the last change on IPC. */
  publishedMs: number
  /** First statement sent -> the client received the last change. */
  receivedMs: number
}

interface ThroughputResult {
  changes: number
  update: { changesPerSec: Spread; receivedMs: Spread; publishedMs: Spread; writerMs: Spread }
  insert: { changesPerSec: Spread; receivedMs: Spread; publishedMs: Spread; writerMs: Spread }
  pushBaseline: { changes: number; changesPerSec: Spread; receivedMs: Spread }
}

/** Counts changes whose title starts with a tag, on the client socket and on IPC. */
function tagCounter(
  sub: Awaited<ReturnType<typeof subscriber>>,
  ipcSeen: (fn: (message: LiveMessage, at: number) => void) => void,
  tag: string,
  expected: number,
) {
  const received = new Set<string>()
  const published = new Set<string>()
  let receivedAt = 0
  let publishedAt = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => {
    done = resolve
  })
  sub.listen((push, at) => {
    for (const { record } of push.upserts) {
      if (String(record.title).startsWith(tag)) received.add(record.uid as string)
    }
    if (received.size >= expected && receivedAt === 0) {
      receivedAt = at
      done()
    }
  })
  ipcSeen((message, at) => {
    for (const change of message.changes) {
      if (change.after && String(change.after.title).startsWith(tag)) published.add(change.uid)
    }
    if (published.size >= expected && publishedAt === 0) publishedAt = at
  })
  return {
    all: deadline(all, 120_000, `${expected} changes tagged ${tag}`),
    times: () => ({ receivedAt, publishedAt: publishedAt || receivedAt }),
  }
}

async function runThroughput(pgdb: PgDatabase, server: LiveServer): Promise<ThroughputResult> {
  const writer = await pgClient(pgdb.url)
  const sub = await subscriber(server.url)
  const pusher = await socketTo(server.url)
  const hlc = new HybridClock('benchbulk', () => Date.now())
  let onIpc: (message: LiveMessage, at: number) => void = () => {}
  const unsubscribe = await server.ipc.subscribe('tidesync:changes:todos', (message) =>
    onIpc(message as unknown as LiveMessage, performance.now()),
  )
  const changes = STATEMENTS * ROWS_PER_STATEMENT
  const baselineChanges = BASELINE_PUSHES * ROWS_PER_STATEMENT
  try {
    // Slices of records (after the latency case's 2,000): the SQL updates', and the pushes' (never written by SQL).
    const all = await uidsOf(writer, `owner_id <> 'bulk'`)
    const updateUids = all.slice(2000, 2000 + changes)
    const pushUids = all.slice(2000 + changes, 2000 + changes + baselineChanges)
    if (updateUids.length < changes || pushUids.length < baselineChanges)
      throw new Error('not enough seeded records')

    const sqlRun = async (kind: 'update' | 'insert', run: number): Promise<ThroughputRun> => {
      const tag = `${kind} ${run}:`
      const counter = tagCounter(sub, (fn) => (onIpc = fn), tag, changes)
      const start = performance.now()
      for (let s = 0; s < STATEMENTS; s++) {
        if (kind === 'update') {
          const slice = updateUids.slice(s * ROWS_PER_STATEMENT, (s + 1) * ROWS_PER_STATEMENT)
          await writer.query(
            `UPDATE todos SET title = $1 || uid::text, done = NOT done WHERE uid = ANY($2::uuid[])`,
            [tag, slice],
          )
        } else {
          await writer.query(
            `INSERT INTO todos (uid, owner_id, title, priority)
             SELECT gen_random_uuid(), 'bulk', $1 || i, i % 10 FROM generate_series(1, ${ROWS_PER_STATEMENT}) AS i`,
            [`${tag}${s}.`],
          )
        }
      }
      const writerDone = performance.now()
      await counter.all
      const { receivedAt, publishedAt } = counter.times()
      return {
        changes,
        writerMs: writerDone - start,
        publishedMs: publishedAt - start,
        receivedMs: receivedAt - start,
      }
    }

    const pushRun = async (run: number): Promise<number> => {
      const tag = `pushed ${run}:`
      const counter = tagCounter(sub, (fn) => (onIpc = fn), tag, baselineChanges)
      const start = performance.now()
      for (let s = 0; s < BASELINE_PUSHES; s++) {
        const slice = pushUids.slice(s * ROWS_PER_STATEMENT, (s + 1) * ROWS_PER_STATEMENT)
        const batch: Change[] = slice.map((uid) => ({
          id: uuidv7(),
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: `${tag}${uid}` },
          clock: hlc.now(),
        }))
        expectApplied(
          await request<PushResult>(pusher, 'sync:push', { clientId: 'bench-bulk', changes: batch }),
          batch.length,
        )
      }
      await counter.all
      return counter.times().receivedAt - start
    }

    const updates: ThroughputRun[] = []
    const inserts: ThroughputRun[] = []
    const pushes: number[] = []
    // No warm-up round: the latency case ran just before on the same server.
    for (let r = 0; r < RUNS; r++) {
      const u = await sqlRun('update', r)
      const i = await sqlRun('insert', r)
      const p = await pushRun(r)
      updates.push(u)
      inserts.push(i)
      pushes.push(p)
      const rate = (n: number, ms: number) => Math.round((n * 1000) / ms).toLocaleString('en-US')
      console.log(
        `  throughput run ${r + 1}: SQL updates ${rate(changes, u.receivedMs)}/s (writer ${fmt(u.writerMs)} ms, published ${fmt(u.publishedMs)} ms, received ${fmt(u.receivedMs)} ms), ` +
          `inserts ${rate(changes, i.receivedMs)}/s (received ${fmt(i.receivedMs)} ms), pushes ${rate(baselineChanges, p)}/s`,
      )
    }
    const summarize = (runs: ThroughputRun[]) => ({
      changesPerSec: spread(
        runs.map((r) => (r.changes * 1000) / r.receivedMs),
        0,
      ),
      receivedMs: spread(runs.map((r) => r.receivedMs)),
      publishedMs: spread(runs.map((r) => r.publishedMs)),
      writerMs: spread(runs.map((r) => r.writerMs)),
    })
    return {
      changes,
      update: summarize(updates),
      insert: summarize(inserts),
      pushBaseline: {
        changes: baselineChanges,
        changesPerSec: spread(
          pushes.map((ms) => (baselineChanges * 1000) / ms),
          0,
        ),
        receivedMs: spread(pushes),
      },
    }
  } finally {
    await unsubscribe()
    sub.socket.disconnect()
    pusher.disconnect()
    await writer.end()
  }
}

// 3. Cost to the writer --------------------------------------------------------------------------

type Variant = 'plain' | 'on' | 'off'
const VARIANTS: Variant[] = ['plain', 'on', 'off']

interface CostResult {
  single: Record<Variant, Spread>
  bulk: Record<Variant, Spread>
  ratio: { singleOn: Spread; singleOff: Spread; bulkOn: Spread; bulkOff: Spread }
}

/** How a database runs one statement for the cost case, per variant. */
interface CostWriter {
  /** Untimed, before each statement: switches the session setting where one connection serves every variant. */
  use?(variant: Variant): Promise<void>
  query(variant: Variant, text: string, params: unknown[]): Promise<unknown>
}

const plainDdl = todosDdl.replace(
  'CREATE TABLE IF NOT EXISTS todos',
  'CREATE TABLE IF NOT EXISTS todos_plain',
)

async function runCost(
  kind: string,
  writer: CostWriter,
  uids: string[],
  warmUpRounds: number,
): Promise<CostResult> {
  const table = (v: Variant) => (v === 'plain' ? 'todos_plain' : 'todos')
  const bulkUids = uids.slice(0, ROWS_PER_STATEMENT)
  let n = 0
  const timed = async (v: Variant, text: string, params: unknown[]): Promise<number> => {
    await writer.use?.(v)
    const start = performance.now()
    await writer.query(v, text, params)
    return performance.now() - start
  }
  const single = (v: Variant, uid: string) =>
    timed(v, `UPDATE ${table(v)} SET title = $1 WHERE uid = $2`, [`single ${++n}`, uid])
  const bulk = (v: Variant) =>
    timed(v, `UPDATE ${table(v)} SET title = $1 || uid::text WHERE uid = ANY($2::uuid[])`, [
      `bulk ${++n}:`,
      bulkUids,
    ])
  const times = { single: { plain: [], on: [], off: [] }, bulk: { plain: [], on: [], off: [] } } as Record<
    'single' | 'bulk',
    Record<Variant, number[]>
  >
  // Statement by statement, the variants take turns in rotating order: a slow moment of the
  // (shared) machine or a checkpoint hits all three alike. The first rounds warm up (PGlite's
  // WebAssembly gets several times faster over its first few hundred statements).
  for (let r = -warmUpRounds; r < RUNS; r++) {
    const sums = { single: { plain: 0, on: 0, off: 0 }, bulk: { plain: 0, on: 0, off: 0 } }
    for (let i = 0; i < SINGLE_PER_RUN; i++) {
      const uid = uids[(Math.max(r, 0) * SINGLE_PER_RUN + i) % uids.length]!
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = VARIANTS[(i + k) % VARIANTS.length]!
        sums.single[v] += await single(v, uid)
      }
    }
    for (let i = 0; i < BULK_PER_RUN; i++) {
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = VARIANTS[(i + r + k + warmUpRounds) % VARIANTS.length]!
        sums.bulk[v] += await bulk(v)
      }
    }
    if (r < 0) continue
    for (const v of VARIANTS) {
      times.single[v].push(sums.single[v] / SINGLE_PER_RUN)
      times.bulk[v].push(sums.bulk[v] / BULK_PER_RUN)
    }
  }
  const ratios = (what: 'single' | 'bulk', v: Variant) =>
    spread(
      times[what][v].map((t, i) => t / times[what].plain[i]!),
      2,
    )
  const result: CostResult = {
    single: {
      plain: spread(times.single.plain, 3),
      on: spread(times.single.on, 3),
      off: spread(times.single.off, 3),
    },
    bulk: { plain: spread(times.bulk.plain), on: spread(times.bulk.on), off: spread(times.bulk.off) },
    ratio: {
      singleOn: ratios('single', 'on'),
      singleOff: ratios('single', 'off'),
      bulkOn: ratios('bulk', 'on'),
      bulkOff: ratios('bulk', 'off'),
    },
  }
  console.log(
    `  cost ${kind.padEnd(8)} single-row UPDATE: plain ${show(result.single.plain)}, capture ${show(result.single.on)}, off ${show(result.single.off)}; ` +
      `1,000-row UPDATE: plain ${show(result.bulk.plain)}, capture ${show(result.bulk.on)}, off ${show(result.bulk.off)}`,
  )
  return result
}

async function costPostgres(): Promise<CostResult> {
  const database = await postgresDatabase()
  const writer = await pgClient(database.url)
  const writerOff = await pgClient(database.url)
  const ipc = await createIpc({ driver: 'memory' })
  try {
    await writer.query(plainDdl)
    await seed((text) => writer.query(text), 'todos', COST_ROWS)
    await writer.query('INSERT INTO todos_plain SELECT * FROM todos')
    await writer.query('ANALYZE todos_plain')
    await createTidesync({
      db: database.db,
      ipc,
      logger: noopLogger,
      models: { todos: { table: todos } },
    }).setupCapture()
    await writerOff.query(`SET tidesync.capture = 'off'`)
    const uids = (await uidsOf(writer, 'true')).slice(0, 2000)
    return await runCost(
      'postgres',
      { query: (v, text, params) => (v === 'off' ? writerOff : writer).query(text, params) },
      uids,
      1,
    )
  } finally {
    await writer.end()
    await writerOff.end()
    await ipc.close()
    await database.close()
  }
}

async function costPglite(): Promise<CostResult> {
  const client = new PGlite()
  const db = drizzlePglite(client) as unknown as TidesyncDb
  const ipc = await createIpc({ driver: 'memory' })
  try {
    await ensureSchema(db)
    await client.exec(todosDdl)
    await client.exec(plainDdl)
    await seed((text) => client.query(text), 'todos', COST_ROWS)
    await client.query('INSERT INTO todos_plain SELECT * FROM todos')
    await client.query('ANALYZE todos_plain')
    await createTidesync({ db, ipc, logger: noopLogger, models: { todos: { table: todos } } }).setupCapture()
    const { rows } = await client.query<{ uid: string }>('SELECT uid FROM todos ORDER BY uid LIMIT 2000')
    let off = false
    return await runCost(
      'pglite',
      {
        async use(v) {
          if ((v === 'off') === off) return
          off = v === 'off'
          await client.query(off ? `SET tidesync.capture = 'off'` : 'RESET tidesync.capture')
        },
        query: (_, text, params) => client.query(text, params),
      },
      rows.map((r) => r.uid),
      2,
    )
  } finally {
    await ipc.close()
    await client.close()
  }
}

// 4. Push throughput without and with capture ----------------------------------------------------

async function runPushBeforeAfter(): Promise<{ before: PushBenchResult[][]; after: PushBenchResult[][] }> {
  const database = await postgresDatabase()
  const ipc = await createIpc({ driver: 'memory' })
  const before: PushBenchResult[][] = []
  const after: PushBenchResult[][] = []
  try {
    const t = createTidesync({
      db: database.db,
      ipc,
      logger: noopLogger,
      models: { todos: { table: todos } },
    })
    for (let r = 0; r < PUSH_ROUNDS; r++) {
      if (PUSH_BEFORE) {
        console.log(`  push, capture off (no triggers), round ${r + 1}:`)
        before.push(await runPushBench('postgres', database.db))
      }
      await t.setupCapture()
      console.log(`  push, capture on, round ${r + 1}:`)
      after.push(await runPushBench('postgres', database.db))
      // Back to no triggers for the next round: dropping the model's capture function drops its triggers.
      if (PUSH_BEFORE && r + 1 < PUSH_ROUNDS)
        await database.db.execute(sql.raw('DROP FUNCTION tidesync_capture_todos() CASCADE'))
    }
    return { before, after }
  } finally {
    await ipc.close()
    await database.close()
  }
}

/** Per workload, the median of the rounds' figures (each already a median of 3). */
function mergePushRounds(rounds: PushBenchResult[][]): PushBenchResult[] {
  return rounds[0]!.map((first, i) => {
    const med = (pick: (r: PushBenchResult) => number) => spread(rounds.map((r) => pick(r[i]!))).median
    return { ...first, batchMs: med((r) => r.batchMs), singleMs: med((r) => r.singleMs) }
  })
}

/** The push figures sync.bench.ts wrote for PostgreSQL, back in PushBenchResult form (for the table). */
function pushResultsOf(section: unknown): PushBenchResult[] {
  const { postgres: figures, changes = 1000 } = (section ?? {}) as {
    postgres?: Record<string, number>
    changes?: number
  }
  if (!figures) return []
  return (['creates', 'edits'] as const)
    .filter((workload) => figures[`${workload}.batch.ms`] !== undefined)
    .map((workload) => ({
      workload,
      changes,
      batchMs: figures[`${workload}.batch.ms`]!,
      singleMs: figures[`${workload}.single.ms`]!,
    }))
}

// Main -------------------------------------------------------------------------------------------

function previousResults(): Record<string, unknown> {
  if (!existsSync(RESULTS_URL)) return {}
  return JSON.parse(readFileSync(RESULTS_URL, 'utf8')) as Record<string, unknown>
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU'
  return `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}; shared machine, server + client + writer in one process`
}

async function main(): Promise<void> {
  const reason = await probePostgres()
  if (reason) {
    console.log(`capture bench skipped: PostgreSQL is needed (${reason})`)
    return
  }
  const started = performance.now()
  const seconds: Record<string, number> = {}
  const lap = (key: string, since: number) => {
    seconds[key] = round((performance.now() - since) / 1000, 1)
  }
  const loadAtStart = os.loadavg()[0]!
  const out: Record<string, unknown> = {}
  const probe = await pgClient(databaseUrl)
  const version = (await probe.query<{ server_version: string }>('SHOW server_version')).rows[0]
    ?.server_version
  // Without autovacuum nothing analyzes the change log and the metadata as they grow: the
  // planner's row estimates stay those of the empty tables (it matters to the capture reader).
  const autovacuum = (await probe.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]?.autovacuum
  await probe.end()
  console.log(`capture bench: PostgreSQL ${version} (autovacuum ${autovacuum}), ${RUNS} runs per figure`)

  let latency: LatencyResult | undefined
  let throughput: ThroughputResult | undefined
  if (CASES.has('latency') || CASES.has('throughput')) {
    const database = await postgresDatabase()
    const writer = await pgClient(database.url)
    await seed(
      (text) => writer.query(text),
      'todos',
      2000 + STATEMENTS * ROWS_PER_STATEMENT + BASELINE_PUSHES * ROWS_PER_STATEMENT,
    )
    await writer.end()
    const server = await startServer(database.db)
    try {
      let since = performance.now()
      if (CASES.has('latency')) {
        latency = await runLatency(database, server)
        lap('latency', since)
      }
      since = performance.now()
      if (CASES.has('throughput')) {
        throughput = await runThroughput(database, server)
        lap('throughput', since)
      }
    } finally {
      await server.close()
      await database.close()
    }
  }
  let cost: { postgres: CostResult; pglite: CostResult } | undefined
  if (CASES.has('cost')) {
    const since = performance.now()
    cost = { postgres: await costPostgres(), pglite: await costPglite() }
    lap('cost', since)
  }
  let push: { before: PushBenchResult[] | undefined; after: PushBenchResult[] } | undefined
  if (CASES.has('push')) {
    const since = performance.now()
    const rounds = await runPushBeforeAfter()
    lap('push', since)
    push = {
      before: rounds.before.length > 0 ? mergePushRounds(rounds.before) : undefined,
      after: mergePushRounds(rounds.after),
    }
  }

  // Results --------------------------------------------------------------------------------------
  const results = previousResults()
  if (latency) {
    out.latency = {
      what: `single-row UPDATE by SQL (autocommit) -> the subscribed socket's changes event with the new value: sql = from the UPDATE returning (committed), sql.fromSend = from sending it, sql.writer = the UPDATE itself; baseline push.fromSend = a sync:push of the same edit from another socket, from sending it (tidesync publishes before it acknowledges, so push.fromAck is negative); ${latency.samples} samples per run, p50/p99 per run, median (min-max) of ${latency.runs} runs`,
      'sql.p50.ms': latency.sqlP50,
      'sql.p99.ms': latency.sqlP99,
      'sql.fromSend.p50.ms': latency.sqlFromSendP50,
      'sql.fromSend.p99.ms': latency.sqlFromSendP99,
      'sql.writer.p50.ms': latency.sqlWriterP50,
      'push.fromAck.p50.ms': latency.pushFromAckP50,
      'push.fromAck.p99.ms': latency.pushFromAckP99,
      'push.fromSend.p50.ms': latency.pushFromSendP50,
      'push.fromSend.p99.ms': latency.pushFromSendP99,
      goal: { 'p50.ms': GOALS.latencyP50Ms, 'p99.ms': GOALS.latencyP99Ms },
      met: latency.sqlP50.median <= GOALS.latencyP50Ms && latency.sqlP99.median <= GOALS.latencyP99Ms,
    }
  }
  if (throughput) {
    out.throughput = {
      what: `${STATEMENTS} x ${ROWS_PER_STATEMENT}-row statements by SQL, back to back; changes/s = ${throughput.changes} / (first statement -> client received every change)`,
      changes: throughput.changes,
      'update.changesPerSec': throughput.update.changesPerSec,
      'update.received.ms': throughput.update.receivedMs,
      'update.published.ms': throughput.update.publishedMs,
      'update.writer.ms': throughput.update.writerMs,
      'insert.changesPerSec': throughput.insert.changesPerSec,
      'insert.received.ms': throughput.insert.receivedMs,
      'insert.published.ms': throughput.insert.publishedMs,
      'insert.writer.ms': throughput.insert.writerMs,
      'pushBaseline.changes': throughput.pushBaseline.changes,
      'pushBaseline.changesPerSec': throughput.pushBaseline.changesPerSec,
      goal: { changesPerSec: GOALS.changesPerSec },
      met:
        Math.min(throughput.update.changesPerSec.median, throughput.insert.changesPerSec.median) >=
        GOALS.changesPerSec,
    }
  }
  if (cost) {
    const entry = (c: CostResult) => ({
      'single.plain.ms': c.single.plain,
      'single.capture.ms': c.single.on,
      'single.captureOff.ms': c.single.off,
      'single.ratio': c.ratio.singleOn,
      'single.ratioOff': c.ratio.singleOff,
      'bulk1000.plain.ms': c.bulk.plain,
      'bulk1000.capture.ms': c.bulk.on,
      'bulk1000.captureOff.ms': c.bulk.off,
      'bulk1000.ratio': c.ratio.bulkOn,
      'bulk1000.ratioOff': c.ratio.bulkOff,
      met: c.ratio.singleOn.median <= GOALS.costRatio && c.ratio.bulkOn.median <= GOALS.costRatio,
    })
    out.cost = {
      what: `ms per statement; plain = identical table without triggers, capture = triggers on, captureOff = triggers with tidesync.capture = 'off' (tidesync's own writes); ratio = capture / plain per round; single: ${SINGLE_PER_RUN} autocommit UPDATEs per run, bulk1000: ${BULK_PER_RUN} per run`,
      goal: { ratio: GOALS.costRatio },
      postgres: entry(cost.postgres),
      pglite: entry(cost.pglite),
    }
  }
  if (push) {
    const after = pushSummary({ postgres: push.after }).postgres as Record<string, number>
    const ratios = (before: Record<string, number> | undefined) => {
      if (!before) return undefined
      const ratio: Record<string, number> = {}
      for (const key of Object.keys(after)) {
        if (key.endsWith('changesPerSec') && before[key]) ratio[key] = round(after[key]! / before[key]!, 2)
      }
      return ratio
    }
    const before = push.before && (pushSummary({ postgres: push.before }).postgres as Record<string, number>)
    const previous = results.push as { postgres?: Record<string, number>; date?: string } | undefined
    out.push = {
      what: `push-bench.ts on PostgreSQL with capture triggers (after)${before ? ', and on the same database without them just before (before)' : ''}, ${PUSH_ROUNDS} round(s) (each figure a median of 3 runs; of several rounds, the median); syncBench = the push figures of results.json written by sync.bench.ts without triggers (in npm run bench: minutes earlier, same run; see its date); ratio = after / before (1 = no slower)`,
      after,
      ...(before ? { before, ratio: ratios(before) } : {}),
      syncBench: { ...(previous?.postgres ?? {}), date: previous?.date },
      ratioToSyncBench: ratios(previous?.postgres),
    }
  }
  out.postgres = `${version}; autovacuum ${autovacuum}`
  out.machine = machine()
  out.loadAverage = { start: round(loadAtStart, 1), end: round(os.loadavg()[0]!, 1) }
  out.date = new Date().toISOString()
  out.seconds = { ...seconds, total: round((performance.now() - started) / 1000, 1) }

  // Cases not run this time keep their figures (BENCH_CAPTURE_CASES); the keys in a fixed order.
  const merged: Record<string, unknown> = {
    ...((results.capture as Record<string, unknown> | undefined) ?? {}),
    ...out,
  }
  const order = [
    'latency',
    'throughput',
    'cost',
    'push',
    'postgres',
    'machine',
    'loadAverage',
    'date',
    'seconds',
  ]
  results.capture = Object.fromEntries(order.filter((key) => key in merged).map((key) => [key, merged[key]]))
  writeFileSync(RESULTS_URL, `${JSON.stringify(results, null, 2)}\n`)

  // Table ----------------------------------------------------------------------------------------
  console.log('')
  console.log('| change capture | median (min-max) | goal | |')
  console.log('|---|---:|---:|---|')
  if (latency) {
    console.log(
      `| SQL UPDATE -> client, p50 | ${show(latency.sqlP50)} | <= ${GOALS.latencyP50Ms} ms | ${met(latency.sqlP50.median <= GOALS.latencyP50Ms)} |`,
    )
    console.log(
      `| SQL UPDATE -> client, p99 | ${show(latency.sqlP99)} | <= ${GOALS.latencyP99Ms} ms | ${met(latency.sqlP99.median <= GOALS.latencyP99Ms)} |`,
    )
    console.log(
      `| SQL UPDATE sent -> client, p50 / p99 | ${show(latency.sqlFromSendP50)} / ${show(latency.sqlFromSendP99)} | | |`,
    )
    console.log(
      `| baseline: push sent -> client, p50 / p99 | ${show(latency.pushFromSendP50)} / ${show(latency.pushFromSendP99)} | | |`,
    )
    console.log(
      `| baseline: push acknowledged -> client, p50 / p99 | ${show(latency.pushFromAckP50)} / ${show(latency.pushFromAckP99)} | | (published before the ack) |`,
    )
  }
  if (throughput) {
    const perSec = ' /s'
    console.log(
      `| captured changes/s, ${STATEMENTS} x ${ROWS_PER_STATEMENT}-row UPDATE | ${show(throughput.update.changesPerSec, perSec)} | >= ${GOALS.changesPerSec.toLocaleString('en-US')}/s | ${met(throughput.update.changesPerSec.median >= GOALS.changesPerSec)} |`,
    )
    console.log(
      `| captured changes/s, ${STATEMENTS} x ${ROWS_PER_STATEMENT}-row INSERT | ${show(throughput.insert.changesPerSec, perSec)} | >= ${GOALS.changesPerSec.toLocaleString('en-US')}/s | ${met(throughput.insert.changesPerSec.median >= GOALS.changesPerSec)} |`,
    )
    console.log(
      `| baseline: pushes of ${ROWS_PER_STATEMENT} updates -> client | ${show(throughput.pushBaseline.changesPerSec, perSec)} | | |`,
    )
  }
  if (cost) {
    for (const [kind, c] of Object.entries(cost)) {
      console.log(
        `| ${kind}: single-row UPDATE, plain / capture / off | ${fmt(c.single.plain.median)} / ${fmt(c.single.on.median)} / ${fmt(c.single.off.median)} ms | | |`,
      )
      console.log(
        `| ${kind}: single-row UPDATE, capture / plain | ${show(c.ratio.singleOn, 'x')} | <= ${GOALS.costRatio}x | ${met(c.ratio.singleOn.median <= GOALS.costRatio)} |`,
      )
      console.log(
        `| ${kind}: 1,000-row UPDATE, plain / capture / off | ${fmt(c.bulk.plain.median)} / ${fmt(c.bulk.on.median)} / ${fmt(c.bulk.off.median)} ms | | |`,
      )
      console.log(
        `| ${kind}: 1,000-row UPDATE, capture / plain | ${show(c.ratio.bulkOn, 'x')} | <= ${GOALS.costRatio}x | ${met(c.ratio.bulkOn.median <= GOALS.costRatio)} |`,
      )
    }
  }
  console.log('')
  if (push?.before) {
    console.log('push bench, PostgreSQL, before (no capture triggers):')
    console.log(`${pushTable({ postgres: push.before })}\n`)
  }
  if (push) {
    const previous = (results.push as { date?: string } | undefined)?.date
    console.log(
      `push bench, PostgreSQL, without capture triggers (sync.bench.ts, ${previous ?? 'no figures'}):`,
    )
    console.log(`${pushTable({ postgres: pushResultsOf(results.push) })}\n`)
    console.log('push bench, PostgreSQL, with capture triggers:')
    console.log(`${pushTable({ postgres: push.after })}\n`)
  }
  console.log(
    `capture bench: ${round((performance.now() - started) / 1000, 1)} s (${Object.entries(seconds)
      .map(([key, s]) => `${key} ${s} s`)
      .join(', ')}); wrote bench/results.json (capture)`,
  )
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
