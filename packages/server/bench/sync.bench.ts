/**
 * Sync cost: full reconcile, delta pull, and the seed's algorithm, on 1,000 / 10,000 / 100,000
 * records.
 *
 *   npm run bench -w @tidesync/server       (tsx --conditions=source bench/sync.bench.ts)
 *
 * The scenario, the same at every size: a client holds every record of the collection (its
 * metadata dictionary and a delta checkpoint), then 100 records change on the server (updates
 * through the services). The client catches up:
 * - full:  `sync:full` with its N-entry metadata dictionary (answer: 100 `updateClient`);
 * - delta: `sync:pull` from its checkpoint, every page (answer: 100 upserts);
 * - seed:  express-x-drizzle 1.0.5's `sync.go` ported as it was written (`findMany(where)`, then
 *   one metadata query per uid), at 1,000 and 10,000 records only (it is the slow baseline).
 * Calls are in process (no socket): what is measured is the server's work. Each figure is the
 * median of several runs after a warm-up run.
 *
 * Runs on PGlite (the embedded default) and, when it is reachable, on PostgreSQL (DATABASE_URL,
 * a throwaway database). Writes bench/results.json: the headline figures from PGlite at the top
 * (`full.ms.100k`, `seedAlgo.ratio.10k` = seed / full at 10k, `delta.fraction` = delta / full
 * at 100k), every figure per size under `pglite` and `postgres`.
 *
 * A second case, `push`, measures push throughput (changes applied per second): one `sync:push`
 * of 1,000 changes against the same 1,000 changes sent as 1,000 single-change pushes, for two
 * outboxes (1,000 new records; 500 new records each followed by an edit). Its figures go under
 * `push` in results.json (see push-bench.ts).
 *
 * A third case, `catchup`, measures a client catching up on 20,000 changed records through the
 * change log (log pages) against loading the same records from scratch (snapshot pages), in the
 * same run. Its figures go under `catchUp` (see catch-up-bench.ts).
 *
 * Env: BENCH_SIZES (default 1000,10000,100000), BENCH_SKIP_POSTGRES=1, BENCH_CASES (default
 * `sync,push,catchup`; `BENCH_CASES=push` re-runs only the push case and keeps the other figures
 * of results.json as they are).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { createIpc } from '@tidesync/ipc'
import {
  type ClientMeta,
  createTidesync,
  ensureSchema,
  noopLogger,
  type Tidesync,
  type TidesyncDb,
  tidesyncMeta,
} from '@tidesync/server'
import { createTestDatabase, probePostgres } from '@tidesync/test-env'
import { and, eq, sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { todos, todosDdl } from '../src/__tests__/fixtures/schema.js'
import { type CatchUpResult, catchUpSummary, runCatchUpBench } from './catch-up-bench.js'
import { type PushBenchResult, pushSummary, pushTable, runPushBench } from './push-bench.js'

const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number)
const SEED_MAX = 10_000
const CHANGES = 100
const CASES = new Set((process.env.BENCH_CASES ?? 'sync,push,catchup').split(',').map((c) => c.trim()))
const RESULTS_URL = new URL('./results.json', import.meta.url)

interface Database {
  kind: 'pglite' | 'postgres'
  db: TidesyncDb
  close(): Promise<void>
}

async function pgliteDatabase(): Promise<Database> {
  const client = new PGlite()
  return { kind: 'pglite', db: drizzlePglite(client) as unknown as TidesyncDb, close: () => client.close() }
}

async function postgresDatabase(): Promise<Database> {
  const database = await createTestDatabase('tidesync_bench')
  const pool = new pg.Pool({ connectionString: database.url, max: 4 })
  return {
    kind: 'postgres',
    db: drizzleNodePg(pool) as unknown as TidesyncDb,
    close: async () => {
      await pool.end()
      await database.drop()
    },
  }
}

/** Empties the tables and loads `n` records, each with its metadata and change-log entry. */
async function load(db: TidesyncDb, n: number): Promise<void> {
  await db.execute(
    sql.raw('TRUNCATE todos, tidesync_meta, tidesync_changes, tidesync_applied, tidesync_state'),
  )
  await db.execute(sql`
    INSERT INTO todos (uid, owner_id, title, done, priority, likes, due_at)
    SELECT gen_random_uuid(), 'u' || (i % 50), 'todo number ' || i, i % 3 = 0, i % 10, i % 7,
      timestamptz '2026-01-01' + i * interval '1 minute'
    FROM generate_series(1, ${n}::int) AS i`)
  await db.execute(sql`
    INSERT INTO tidesync_meta (model, uid, created_at, updated_at, rev, clocks)
    SELECT 'todos', uid::text, timestamptz '2026-01-01', timestamptz '2026-01-01', nextval('tidesync_rev_seq'), '{}'
    FROM todos`)
  await db.execute(sql`
    INSERT INTO tidesync_changes (rev, model, uid, op, committed_at)
    SELECT rev, model, uid, 'upsert', created_at FROM tidesync_meta`)
  for (const table of ['todos', 'tidesync_meta', 'tidesync_changes'])
    await db.execute(sql.raw(`ANALYZE ${table}`))
}

/** What a client that holds everything sends: its metadata dictionary, and its checkpoint. */
async function clientState(
  t: Tidesync,
): Promise<{ metadata: Record<string, ClientMeta>; checkpoint: string }> {
  const full = await t.fullSync({ model: 'todos', metadata: {} }, {})
  const metadata: Record<string, ClientMeta> = {}
  for (const { record, meta } of full.addClient) {
    metadata[record.uid] = { created_at: meta.created_at, updated_at: meta.updated_at, deleted_at: null }
  }
  return { metadata, checkpoint: full.checkpoint }
}

// The seed's algorithm ---------------------------------------------------------------------------

interface SeedMeta {
  uid: string
  created_at: Date
  updated_at: Date | null
  deleted_at: Date | null
}

/**
 * express-x-drizzle 1.0.5's `sync.go`, steps 1 to 3 (no client tombstones here, so its step 4
 * deletes nothing), on our tables: `findMany(where)`, then the metadata of each uid with its
 * own query. The metadata query names the model too, so it uses our (model, uid) primary key,
 * as the seed's used its uid primary key.
 */
async function seedSync(db: TidesyncDb, cutoffDate: Date, clientMetadataDict: Record<string, ClientMeta>) {
  const metadataOf = async (uid: string): Promise<SeedMeta | undefined> => {
    const [row] = await db
      .select()
      .from(tidesyncMeta)
      .where(and(eq(tidesyncMeta.model, 'todos'), eq(tidesyncMeta.uid, uid)))
    return row
      ? { uid, created_at: row.createdAt, updated_at: row.updatedAt, deleted_at: row.deletedAt }
      : undefined
  }
  // STEP 1
  const databaseValues = (await db.select().from(todos)) as Array<Record<string, unknown>>
  const databaseValuesDict: Record<string, Record<string, unknown>> = {}
  for (const value of databaseValues) databaseValuesDict[value.uid as string] = value
  // STEP 2
  const onlyDatabaseIds = new Set<string>()
  const onlyClientIds = new Set<string>()
  const databaseAndClientIds = new Set<string>()
  for (const uid in databaseValuesDict) {
    if (uid in clientMetadataDict) databaseAndClientIds.add(uid)
    else onlyDatabaseIds.add(uid)
  }
  for (const uid in clientMetadataDict) {
    if (uid in databaseValuesDict) databaseAndClientIds.add(uid)
    else onlyClientIds.add(uid)
  }
  // STEP 3
  const addDatabase: ClientMeta[] = []
  const updateDatabase: ClientMeta[] = []
  const deleteDatabase: string[] = []
  const addClient: unknown[] = []
  const updateClient: unknown[] = []
  const deleteClient: unknown[] = []
  for (const uid of onlyDatabaseIds) {
    const databaseMetaData = (await metadataOf(uid)) ?? { uid, created_at: new Date() }
    addClient.push([databaseValuesDict[uid], databaseMetaData])
  }
  for (const uid of onlyClientIds) {
    const clientMetaData = clientMetadataDict[uid]!
    if (clientMetaData.deleted_at) deleteClient.push([uid, clientMetaData.deleted_at])
    else if (new Date(clientMetaData.created_at) > cutoffDate) addDatabase.push(clientMetaData)
  }
  for (const uid of databaseAndClientIds) {
    const databaseValue = databaseValuesDict[uid]
    const clientMetaData = clientMetadataDict[uid]!
    if (clientMetaData.deleted_at) {
      deleteDatabase.push(uid)
      deleteClient.push([uid, clientMetaData.deleted_at])
    } else {
      const databaseMetaData = (await metadataOf(uid)) ?? { uid, created_at: new Date(), updated_at: null }
      const clientUpdatedAt = new Date(clientMetaData.updated_at || clientMetaData.created_at)
      const databaseUpdatedAt = new Date(databaseMetaData.updated_at || databaseMetaData.created_at)
      const dateDifference = clientUpdatedAt.getTime() - databaseUpdatedAt.getTime()
      if (dateDifference > 0) updateDatabase.push(clientMetaData)
      else if (dateDifference < 0) updateClient.push(databaseValue)
    }
  }
  return { toAdd: addClient, toUpdate: updateClient, toDelete: deleteClient, addDatabase, updateDatabase }
}

// Measuring ----------------------------------------------------------------------------------------

async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn()
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    await fn()
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

interface SizeResult {
  records: number
  fullMs: number
  deltaMs: number
  seedMs?: number
}

async function runSize(database: Database, n: number): Promise<SizeResult> {
  const { db } = database
  await load(db, n)
  const ipc = await createIpc({ driver: 'memory' })
  const t = createTidesync({ db, ipc, logger: noopLogger, models: { todos: { table: todos } } })
  try {
    const { metadata, checkpoint } = await clientState(t)
    const uids = Object.keys(metadata)
    for (let i = 0; i < CHANGES; i++) {
      const uid = uids[Math.floor((i * uids.length) / CHANGES)]!
      await t.services.todos!.update({ uid, patch: { title: `changed ${i}`, done: true } }, {})
    }

    const full = async () => {
      const result = await t.fullSync({ model: 'todos', metadata }, {})
      if (result.updateClient.length !== CHANGES)
        throw new Error(`full: ${result.updateClient.length} updates`)
    }
    const delta = async () => {
      let cp = checkpoint
      let upserts = 0
      for (;;) {
        const page = await t.pull({ model: 'todos', checkpoint: cp }, {})
        upserts += page.upserts.length
        cp = page.checkpoint
        if (!page.hasMore) break
      }
      if (upserts !== CHANGES) throw new Error(`delta: ${upserts} upserts`)
    }
    const seed = async () => {
      const result = await seedSync(db, new Date(0), metadata)
      if (result.toUpdate.length !== CHANGES) throw new Error(`seed: ${result.toUpdate.length} updates`)
    }

    const fullMs = await median(n >= 100_000 ? 3 : 5, full)
    const deltaMs = await median(9, delta)
    const seedMs = n <= SEED_MAX ? await median(n >= 10_000 ? 2 : 3, seed) : undefined
    return { records: n, fullMs, deltaMs, seedMs }
  } finally {
    await ipc.close()
  }
}

async function runDatabase(database: Database): Promise<SizeResult[]> {
  const results: SizeResult[] = []
  for (const n of SIZES) {
    const result = await runSize(database, n)
    results.push(result)
    console.log(
      `  ${database.kind.padEnd(8)} ${String(n).padStart(7)} records: full ${fmt(result.fullMs)} ms, delta ${fmt(result.deltaMs)} ms` +
        (result.seedMs === undefined ? '' : `, seed ${fmt(result.seedMs)} ms`),
    )
  }
  return results
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)
}

function round(value: number, digits = 4): number {
  return Number(value.toFixed(digits))
}

function summary(results: SizeResult[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) {
    const k = r.records >= 1000 ? `${r.records / 1000}k` : String(r.records)
    out[`full.ms.${k}`] = round(r.fullMs, 2)
    out[`delta.ms.${k}`] = round(r.deltaMs, 2)
    out[`delta.fraction.${k}`] = round(r.deltaMs / r.fullMs)
    if (r.seedMs !== undefined) {
      out[`seedAlgo.ms.${k}`] = round(r.seedMs, 2)
      out[`seedAlgo.ratio.${k}`] = round(r.seedMs / r.fullMs, 2)
    }
  }
  const largest = results[results.length - 1]!
  out['delta.fraction'] = round(largest.deltaMs / largest.fullMs)
  return out
}

function table(kind: string, results: SizeResult[]): string {
  const lines = [
    `| ${kind} | full reconcile | delta pull | delta / full | seed algorithm | seed / full |`,
    '|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results) {
    lines.push(
      `| ${r.records.toLocaleString('en-US')} | ${fmt(r.fullMs)} ms | ${fmt(r.deltaMs)} ms | ${(r.deltaMs / r.fullMs).toFixed(4)} | ` +
        (r.seedMs === undefined ? '- | - |' : `${fmt(r.seedMs)} ms | ${(r.seedMs / r.fullMs).toFixed(1)}x |`),
    )
  }
  return lines.join('\n')
}

async function withDatabases(run: (database: Database) => Promise<void>): Promise<void> {
  const lite = await pgliteDatabase()
  try {
    await run(lite)
  } finally {
    await lite.close()
  }
  if (process.env.BENCH_SKIP_POSTGRES === '1') return
  const reason = await probePostgres()
  if (reason) {
    console.log(`  postgres skipped: ${reason}`)
    return
  }
  const database = await postgresDatabase()
  try {
    await run(database)
  } finally {
    await database.close()
  }
}

function previousResults(): Record<string, unknown> {
  if (!existsSync(RESULTS_URL)) return {}
  return JSON.parse(readFileSync(RESULTS_URL, 'utf8')) as Record<string, unknown>
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = previousResults()
  const all: Record<string, SizeResult[]> = {}
  const pushes: Record<string, PushBenchResult[]> = {}
  const catchUps: Record<string, CatchUpResult> = {}
  if (CASES.has('sync')) console.log(`sync bench: ${CHANGES} changes on ${SIZES.join(', ')} records`)
  await withDatabases(async (database) => {
    await ensureSchema(database.db)
    await database.db.execute(sql.raw(todosDdl))
    if (CASES.has('sync')) all[database.kind] = await runDatabase(database)
    if (CASES.has('push')) pushes[database.kind] = await runPushBench(database.kind, database.db)
    if (CASES.has('catchup')) catchUps[database.kind] = await runCatchUpBench(database.kind, database.db)
  })

  if (CASES.has('sync')) {
    const headline = summary(all.pglite!)
    results['full.ms.100k'] = headline['full.ms.100k']
    results['seedAlgo.ratio.10k'] = headline['seedAlgo.ratio.10k']
    results['delta.fraction'] = headline['delta.fraction']
    results.database = 'pglite'
    results.changes = CHANGES
    results.pglite = summary(all.pglite!)
    if (all.postgres) results.postgres = summary(all.postgres)
    else delete results.postgres
  }
  const date = new Date().toISOString()
  if (CASES.has('sync')) results.date = date
  if (CASES.has('push')) results.push = { ...pushSummary(pushes), date }
  if (CASES.has('catchup')) results.catchUp = { ...catchUpSummary(catchUps), date }
  results.node = process.version
  writeFileSync(RESULTS_URL, `${JSON.stringify(results, null, 2)}\n`)

  console.log('')
  for (const [kind, rows] of Object.entries(all)) console.log(`${table(kind, rows)}\n`)
  if (CASES.has('push')) console.log(`${pushTable(pushes)}\n`)
  if (CASES.has('sync')) {
    const ratio = results['seedAlgo.ratio.10k'] as number | undefined
    const fraction = results['delta.fraction'] as number | undefined
    console.log(
      `seedAlgo.ratio.10k = ${ratio} (target >= 20): ${ratio !== undefined && ratio >= 20 ? 'met' : 'MISSED'}`,
    )
    console.log(
      `delta.fraction     = ${fraction} (target <= 0.02): ${fraction !== undefined && fraction <= 0.02 ? 'met' : 'MISSED'}`,
    )
  }
  console.log('wrote bench/results.json')
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
