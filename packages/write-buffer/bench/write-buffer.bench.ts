/**
 * Write-buffer throughput against the direct way and against the best bulk insert, on PGlite and
 * on the PostgreSQL server, in one run.
 *
 *   npm run bench -w @tidesync/write-buffer   (tsx --conditions=source bench/write-buffer.bench.ts)
 *
 * Cases (each database gets fresh tables; the buffer uses the memory IPC driver and its defaults:
 * flushInterval 5000 ms, maxQueueSize 10,000, insertMethod 'copy', checkpoint durability with
 * LMDB in a temp dir):
 * - increments: 200,000 `increment('views')` over 1,000 rows from 64 concurrent callers, timed
 *   until every call resolved AND the final `flush()` committed them; against the same work as
 *   one `UPDATE ... SET views = views + 1 WHERE id = $1` per call (64 callers, a smaller sample:
 *   throughputs are compared);
 * - inserts: 100,000 buffered `insert(row)` (64 callers, auto-flushes past maxQueueSize, then
 *   the final flush: enqueue + flush end to end), the same with `insertMethod: 'insert'`, against
 *   one `INSERT` per row, and against the bulk baselines: the same 100,000 rows inserted without
 *   the buffer in one transaction on one connection, from the JavaScript rows to the commit, in
 *   each form of `lib/bulk-baselines.ts` (multi-row `INSERT ... SELECT FROM unnest(...)` and
 *   `jsonb_to_recordset(...)`, COPY FROM STDIN through pg-copy-streams on the server, COPY from a
 *   blob on PGlite); the form with the best median is the baseline;
 * - durability: the increment and insert cases again in journal mode (every operation in LMDB
 *   before it resolves), on the PostgreSQL server.
 * "statements" counts every statement drizzle sent during a case (begin/commit included; a COPY
 * counts one).
 *
 * Every case runs BENCH_ROUNDS times (default 5), after BENCH_WARMUP rounds that are not counted
 * (default 1: JIT warm-up, and PGlite growing its in-memory files the first time), the cases
 * alternating within a round. Each
 * figure is the median of its rounds with the spread (min-max); each ratio is the median of the
 * per-round ratios (both sides measured in the same round, under the same load) with its spread.
 *
 * Prints a table and writes bench/results.json. Env: DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test; a throwaway database is created on that server and
 * dropped; the PostgreSQL cases are skipped when it is unreachable), BENCH_DIRECT_SAMPLE
 * (direct-way calls per round; default 5,000 on PostgreSQL, 2,000 on PGlite), BENCH_ROUNDS,
 * BENCH_SCALE (multiplies every count; results.json is written only at 1 with >= 5 rounds).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createIpc } from '@tidesync/ipc'
import {
  type Durability,
  type Logger,
  openWriteBuffer,
  type WriteBufferOptions,
} from '@tidesync/write-buffer'
import { eq, sql } from 'drizzle-orm'
import { bigint, bigserial, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'
import { BULK_FORMS, type EventRow } from './lib/bulk-baselines.js'
import { type BenchDatabase, openPglite, openPostgres } from './lib/databases.js'
import { ratio, type Spread, show, spread, stored } from './lib/stats.js'

const SCALE = Number(process.env.BENCH_SCALE ?? 1)
const INCREMENTS = Math.round(200_000 * SCALE)
const INSERTS = Math.round(100_000 * SCALE)
const ROWS = 1000
const CALLERS = 64
/** Calls of the direct way per round (it is slow: a smaller sample, throughputs are compared). */
const DIRECT_SAMPLE = {
  postgres: Math.round(Number(process.env.BENCH_DIRECT_SAMPLE ?? 5000) * SCALE),
  pglite: Math.round(Number(process.env.BENCH_DIRECT_SAMPLE ?? 2000) * SCALE),
}
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
/** Rounds run first and not counted: JIT warm-up, and PGlite growing its in-memory files the first time. */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1)

const counters = pgTable('bench_counters', {
  id: integer('id').primaryKey(),
  views: bigint('views', { mode: 'number' }).notNull().default(0),
})

const events = pgTable('bench_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kind: text('kind').notNull(),
  userId: integer('user_id').notNull(),
  payload: jsonb('payload'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
})

const DDL = `
drop table if exists bench_counters, bench_events;
create table bench_counters (id integer primary key, views bigint not null default 0);
insert into bench_counters (id) select g from generate_series(1, ${ROWS}) g;
create table bench_events (id bigserial primary key, kind text not null, user_id integer not null,
  payload jsonb, created_at timestamptz not null default now());
`

const silent: Logger = { debug() {}, info() {}, warn: (m, ...x) => console.warn(m, ...x), error() {} }

interface CaseResult {
  opsPerSecond: number
  statements: number
}

/** `count` calls from `concurrency` callers, each taking the next index. */
async function callers(count: number, concurrency: number, call: (i: number) => Promise<unknown>) {
  let next = 0
  const caller = async () => {
    while (next < count) await call(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, caller))
}

async function measure(database: BenchDatabase, ops: number, work: () => Promise<void>): Promise<CaseResult> {
  const before = database.statements.count
  const started = performance.now()
  await work()
  const seconds = (performance.now() - started) / 1000
  return { opsPerSecond: ops / seconds, statements: database.statements.count - before }
}

async function withBuffer<T>(
  database: BenchDatabase,
  options: Partial<WriteBufferOptions>,
  fn: (buffer: Awaited<ReturnType<typeof openWriteBuffer>>) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-bench-'))
  const ipc = await createIpc({ driver: 'memory' })
  const buffer = await openWriteBuffer({
    ipc,
    databases: { default: database.db },
    checkpointPath: dir,
    handleSignals: false,
    logger: silent,
    ...options,
  })
  try {
    return await fn(buffer)
  } finally {
    await buffer.close()
    await ipc.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function expectCount(database: BenchDatabase, query: string, expected: number, what: string) {
  const found = await database.scalar(query)
  if (found !== expected) throw new Error(`${what}: expected ${expected}, found ${found}`)
}

async function bufferedIncrements(database: BenchDatabase, durability: Durability): Promise<CaseResult> {
  await database.exec('update bench_counters set views = 0')
  const result = await withBuffer(database, { durability }, (buffer) => {
    const table = buffer.table(counters)
    return measure(database, INCREMENTS, async () => {
      await callers(INCREMENTS, CALLERS, (i) => table.where((i % ROWS) + 1).increment('views'))
      await buffer.flush()
    })
  })
  await expectCount(database, 'select sum(views) from bench_counters', INCREMENTS, 'buffered increments')
  return result
}

async function directIncrements(database: BenchDatabase): Promise<CaseResult> {
  await database.exec('update bench_counters set views = 0')
  const sample = DIRECT_SAMPLE[database.name]
  const result = await measure(database, sample, () =>
    callers(sample, CALLERS, (i) =>
      database.db
        .update(counters)
        .set({ views: sql`${counters.views} + 1` })
        .where(eq(counters.id, (i % ROWS) + 1)),
    ),
  )
  await expectCount(database, 'select sum(views) from bench_counters', sample, 'direct increments')
  return result
}

const eventRow = (i: number): EventRow => ({ kind: 'view', userId: (i % ROWS) + 1, payload: { i } })

async function bufferedInserts(
  database: BenchDatabase,
  options: Partial<WriteBufferOptions>,
): Promise<CaseResult> {
  await database.exec('truncate bench_events')
  const result = await withBuffer(database, options, (buffer) => {
    const table = buffer.table(events)
    return measure(database, INSERTS, async () => {
      await callers(INSERTS, CALLERS, (i) => table.insert(eventRow(i)))
      await buffer.flush()
    })
  })
  await expectCount(database, 'select count(*) from bench_events', INSERTS, 'buffered inserts')
  return result
}

async function directInserts(database: BenchDatabase): Promise<CaseResult> {
  await database.exec('truncate bench_events')
  const sample = DIRECT_SAMPLE[database.name]
  const result = await measure(database, sample, () =>
    callers(sample, CALLERS, (i) => database.db.insert(events).values(eventRow(i))),
  )
  await expectCount(database, 'select count(*) from bench_events', sample, 'direct inserts')
  return result
}

async function bulkInserts(database: BenchDatabase, form: (typeof BULK_FORMS)[number]): Promise<CaseResult> {
  await database.exec('truncate bench_events')
  let statements = 0
  const started = performance.now()
  await database.transaction(async (tx) => {
    const rows = Array.from({ length: INSERTS }, (_, i) => eventRow(i))
    statements = await form.run(tx, rows)
  })
  const seconds = (performance.now() - started) / 1000
  await expectCount(database, 'select count(*) from bench_events', INSERTS, form.name)
  return { opsPerSecond: INSERTS / seconds, statements: statements + 2 }
}

/** The 1-minute load average at the start of every round. */
const loads: number[] = []

interface CaseRuns {
  label: string
  rates: number[]
  statements: number[]
}

/** Runs every case ROUNDS times, the cases alternating within a round. */
async function rounds(
  database: BenchDatabase,
  cases: Record<string, { label: string; run: () => Promise<CaseResult> }>,
): Promise<Record<string, CaseRuns>> {
  const out: Record<string, CaseRuns> = {}
  for (let round = 1 - WARMUP; round <= ROUNDS; round++) {
    const load = loadavg()[0]!
    const counted = round >= 1
    if (counted) loads.push(load)
    console.warn(
      `${database.name}: ${counted ? `round ${round}/${ROUNDS}` : 'warm-up round (not counted)'} (load average ${load.toFixed(1)})`,
    )
    for (const [key, { label, run }] of Object.entries(cases)) {
      const result = await run()
      console.warn(`  ${label.padEnd(72)} ${Math.round(result.opsPerSecond).toLocaleString('en-US')} ops/s`)
      if (!counted) continue
      const runs = out[key] ?? { label, rates: [], statements: [] }
      out[key] = runs
      runs.rates.push(result.opsPerSecond)
      runs.statements.push(result.statements)
    }
  }
  return out
}

interface Report {
  rows: string[][]
  json: Record<string, unknown>
}

function reportDatabase(name: string, runs: Record<string, CaseRuns>, report: Report): void {
  const figures: Record<string, unknown> = {}
  for (const [key, { label, rates, statements }] of Object.entries(runs)) {
    const s = spread(rates)
    report.rows.push([name, label, show(s), Math.round(spread(statements).median).toLocaleString('en-US')])
    figures[key] = { ...stored(s), statements: Math.round(spread(statements).median) }
  }
  const bulkKeys = Object.keys(runs).filter((key) => key.startsWith('bulk:'))
  const bestBulk = bulkKeys.reduce((best, key) =>
    spread(runs[key]!.rates).median > spread(runs[best]!.rates).median ? key : best,
  )
  const ratios: Record<string, [Spread, string]> = {
    'increment buffered / direct UPDATE (target >= 50x on PostgreSQL)': [
      ratio(runs.incBuffered!.rates, runs.incDirect!.rates),
      'increment.buffered/direct',
    ],
    'insert buffered / direct INSERT (target >= 40x)': [
      ratio(runs.insBuffered!.rates, runs.insDirect!.rates),
      'insert.buffered/direct',
    ],
    [`insert buffered / best bulk insert (${runs[bestBulk]!.label}) (target >= 0.5x)`]: [
      ratio(runs.insBuffered!.rates, runs[bestBulk]!.rates),
      'insert.buffered/bulk',
    ],
    "insert buffered (insertMethod 'insert') / best bulk insert": [
      ratio(runs.insBufferedInsert!.rates, runs[bestBulk]!.rates),
      'insert.buffered-insert-method/bulk',
    ],
    "insert buffered, COPY / insertMethod 'insert'": [
      ratio(runs.insBuffered!.rates, runs.insBufferedInsert!.rates),
      'insert.copy/insert-method',
    ],
  }
  if (runs.incJournal && runs.insJournal) {
    ratios['increment journal / checkpoint (target >= 0.33x)'] = [
      ratio(runs.incJournal.rates, runs.incBuffered!.rates),
      'increment.journal/checkpoint',
    ]
    ratios['insert journal / checkpoint'] = [
      ratio(runs.insJournal.rates, runs.insBuffered!.rates),
      'insert.journal/checkpoint',
    ]
  }
  const ratioJson: Record<string, unknown> = { 'bulk.baseline': runs[bestBulk]!.label }
  for (const [label, [s, key]] of Object.entries(ratios)) {
    report.rows.push([name, `ratio: ${label}`, show(s, 'ratio'), ''])
    ratioJson[key] = stored(s, 'ratio')
  }
  report.json[name] = { rates: figures, ratios: ratioJson }
}

function printTable(rows: string[][]): void {
  const all = [['database', 'case', 'median (min-max), ops/s or ratio', 'statements'], ...rows]
  const widths = all[0]!.map((_, col) => Math.max(...all.map((row) => row[col]!.length)))
  for (const row of all) console.log(row.map((cell, col) => cell.padEnd(widths[col]!)).join('  '))
}

async function main(): Promise<void> {
  console.log(
    `write-buffer bench: ${INCREMENTS.toLocaleString('en-US')} increments over ${ROWS} rows and ` +
      `${INSERTS.toLocaleString('en-US')} inserts from ${CALLERS} callers; direct samples ` +
      `${DIRECT_SAMPLE.postgres.toLocaleString('en-US')} (PostgreSQL) / ${DIRECT_SAMPLE.pglite.toLocaleString('en-US')} (PGlite); ${ROUNDS} rounds`,
  )
  const report: Report = { rows: [], json: {} }
  const databases = [await openPglite(DDL), await openPostgres(DDL)].filter(
    (d): d is BenchDatabase => d !== null,
  )
  for (const database of databases) {
    const name = database.name
    try {
      const cases: Record<string, { label: string; run: () => Promise<CaseResult> }> = {
        incBuffered: { label: 'increment, buffered', run: () => bufferedIncrements(database, 'checkpoint') },
        incDirect: { label: 'increment, one UPDATE per call', run: () => directIncrements(database) },
        insBuffered: {
          label: 'insert, buffered (enqueue + flush)',
          run: () => bufferedInserts(database, {}),
        },
        insBufferedInsert: {
          label: "insert, buffered, insertMethod 'insert'",
          run: () => bufferedInserts(database, { insertMethod: 'insert' }),
        },
        insDirect: { label: 'insert, one INSERT per row', run: () => directInserts(database) },
      }
      for (const form of BULK_FORMS) {
        if (form.databases.includes(name))
          cases[`bulk:${form.name}`] = {
            label: `no buffer: ${form.name}`,
            run: () => bulkInserts(database, form),
          }
      }
      if (name === 'postgres') {
        cases.incJournal = {
          label: 'increment, buffered, journal',
          run: () => bufferedIncrements(database, 'journal'),
        }
        cases.insJournal = {
          label: 'insert, buffered, journal',
          run: () => bufferedInserts(database, { durability: 'journal' }),
        }
      }
      reportDatabase(name, await rounds(database, cases), report)
    } finally {
      await database.close()
    }
  }
  const load = spread(loads)
  console.log('')
  printTable(report.rows)
  console.log(
    `\nload average (1 min) at the rounds' starts: median ${load.median.toFixed(1)} (${load.min.toFixed(1)}-${load.max.toFixed(1)}) on 2 x ${ROUNDS} rounds, ${cpus().length} CPUs`,
  )
  if (SCALE === 1 && ROUNDS >= 5) {
    const file = fileURLToPath(new URL('./results.json', import.meta.url))
    const json = {
      rounds: ROUNDS,
      warmupRounds: WARMUP,
      inserts: INSERTS,
      increments: INCREMENTS,
      cpus: cpus().length,
      loadAverage: {
        median: Math.round(load.median * 10) / 10,
        min: Math.round(load.min * 10) / 10,
        max: Math.round(load.max * 10) / 10,
      },
      ...report.json,
    }
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`)
    console.log(`wrote ${file}`)
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
