/**
 * Where the time of buffered inserts goes: the enqueue side (the `insert()` calls until they
 * resolve) and the flush side (`flush()` until it committed) apart, on the memory, cluster and
 * Redis IPC drivers.
 *
 *   npx tsx --conditions=source bench/profile.ts
 *
 * Each round queues PROFILE_ROWS rows of the bench's `bench_events` table from 64 callers with
 * flushes held off (maxQueueSize and flushInterval out of reach), then flushes them in one
 * `flush()`. Per phase it reports the wall time, the CPU time of the process that runs the
 * buffer (process.cpuUsage), of the process that holds the IPC store (the cluster primary; the
 * Redis server, from `redis-cli info cpu`) and of PostgreSQL (the backends of the throwaway
 * database, from /proc), and a CPU profile of the buffer's process (inspector, last round):
 * self time per category (write-buffer folder, IPC driver, drivers, GC, idle) and per function.
 * On the cluster driver the buffer runs in a forked worker; this process is the primary.
 *
 * Env: PROFILE_DRIVERS (default memory,cluster,redis), PROFILE_DB (postgres | pglite; default
 * postgres), PROFILE_ROWS (default 100000), PROFILE_ROUNDS (default 5), DATABASE_URL, REDIS_URL,
 * PROFILE_CPUPROF_DIR (also write each phase's .cpuprofile there), WB_ROOT (profile another
 * checkout: a directory holding packages/write-buffer/src and packages/ipc/src, e.g. from
 * `git archive <commit> packages/write-buffer/src packages/ipc/src packages/ipc/package.json`
 * unpacked inside this repository, so that its imports resolve).
 */
import { execFileSync } from 'node:child_process'
import cluster, { type Worker } from 'node:cluster'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { createTestDatabase, probePostgres, probeRedis, redisUrl, uniqueId } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { bigserial, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { type CpuProfile, type ProfileSummary, profiled, summarize } from './lib/cpu-profile.js'
import { spread } from './lib/stats.js'

type Driver = 'memory' | 'cluster' | 'redis'
const DRIVERS = (process.env.PROFILE_DRIVERS ?? 'memory,cluster,redis').split(',') as Driver[]
const DB_KIND = (process.env.PROFILE_DB ?? 'postgres') as 'postgres' | 'pglite'
const ROWS = Number(process.env.PROFILE_ROWS ?? 100_000)
const ROUNDS = Number(process.env.PROFILE_ROUNDS ?? 5)
const CALLERS = 64
const PHASES = ['enqueue', 'flush'] as const
type Phase = (typeof PHASES)[number]

const events = pgTable('bench_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kind: text('kind').notNull(),
  userId: integer('user_id').notNull(),
  payload: jsonb('payload'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
})
const DDL = `drop table if exists bench_events;
create table bench_events (id bigserial primary key, kind text not null, user_id integer not null,
  payload jsonb, created_at timestamptz not null default now());`

// biome-ignore lint/suspicious/noExplicitAny: modules of another checkout (WB_ROOT)
type Modules = { wb: any; ipc: any }

async function loadModules(): Promise<Modules> {
  const root = process.env.WB_ROOT
  if (!root) return { wb: await import('@tidesync/write-buffer'), ipc: await import('@tidesync/ipc') }
  return {
    wb: await import(resolve(root, 'packages/write-buffer/src/index.ts')),
    ipc: await import(resolve(root, 'packages/ipc/src/index.ts')),
  }
}

/** One phase of one round, as the buffer's process measured it. */
interface PhaseRun {
  wallMs: number
  cpuMs: number
  profile?: CpuProfile
}

/** What the process holding the store and PostgreSQL spent meanwhile (measured by this process). */
interface Outside {
  storeCpuMs?: number
  databaseCpuMs?: number
}

const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000

/**
 * The buffer's side: ROUNDS rounds of enqueue then flush, in this process. `mark` is called at
 * each phase's start and end (and awaited), so the store's and the database's CPU can be read
 * around it.
 */
async function runRounds(
  modules: Modules,
  ipc: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: either drizzle driver
  db: any,
  mark: (name: string) => Promise<void>,
): Promise<Record<Phase, PhaseRun>[]> {
  const rounds: Record<Phase, PhaseRun>[] = []
  const silent = { debug() {}, info() {}, warn: console.warn, error: console.error }
  for (let round = 0; round < ROUNDS; round++) {
    await db.execute(sql`truncate bench_events`)
    const dir = mkdtempSync(join(tmpdir(), 'wb-profile-'))
    const buffer = await modules.wb.openWriteBuffer({
      ipc,
      databases: { default: db },
      checkpointPath: dir,
      handleSignals: false,
      maxQueueSize: 1e9,
      flushInterval: 3_600_000,
      logger: silent,
    })
    const table = buffer.table(events)
    const last = round === ROUNDS - 1
    const phase = async (name: Phase, work: () => Promise<unknown>): Promise<PhaseRun> => {
      await mark(`${name}:start`)
      const cpu = process.cpuUsage()
      const started = performance.now()
      let profile: CpuProfile | undefined
      if (last) profile = (await profiled(work)).profile
      else await work()
      const run = { wallMs: performance.now() - started, cpuMs: cpuMs(process.cpuUsage(cpu)), profile }
      await mark(`${name}:end`)
      return run
    }
    let next = 0
    const enqueue = await phase('enqueue', () =>
      Promise.all(
        Array.from({ length: CALLERS }, async () => {
          while (next < ROWS) {
            const i = next++
            await table.insert({ kind: 'view', userId: (i % 1000) + 1, payload: { i } })
          }
        }),
      ),
    )
    const flush = await phase('flush', () => buffer.flush())
    await buffer.close()
    rmSync(dir, { recursive: true, force: true })
    const [{ n }] = (await db.execute(sql`select count(*)::int as n from bench_events`)).rows ?? [{ n: -1 }]
    if (n !== ROWS) throw new Error(`expected ${ROWS} rows, found ${n}`)
    rounds.push({ enqueue, flush })
  }
  return rounds
}

async function openDatabase(url: string | undefined): Promise<{ db: unknown; close: () => Promise<void> }> {
  if (DB_KIND === 'pglite') {
    const client = await PGlite.create()
    await client.exec(DDL)
    return { db: drizzlePglite(client), close: () => client.close() }
  }
  const pool = new pg.Pool({ connectionString: url, max: 16 })
  pool.on('error', () => {})
  return { db: drizzlePg(pool), close: () => pool.end() }
}

/** CPU ms of every PostgreSQL backend of the database (user + system, from /proc; 10 ms ticks). */
async function databaseCpu(admin: pg.Pool | undefined): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  if (!admin) return out
  const { rows } = await admin.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
  )
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * 10)
    } catch {
      // the backend ended
    }
  }
  return out
}

function redisCpuMs(): number | undefined {
  try {
    const info = execFileSync('redis-cli', ['-u', redisUrl, 'info', 'cpu'], { encoding: 'utf8' })
    const get = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN)
    return (get('used_cpu_user') + get('used_cpu_sys')) * 1000
  } catch {
    return undefined
  }
}

/** Reads the store's and the database's CPU at each mark; gives what each phase spent. */
function outsideMeter(driver: Driver, admin: pg.Pool | undefined) {
  const at = new Map<string, { store?: number; database: Map<number, number> }>()
  const store = () =>
    driver === 'cluster' ? cpuMs(process.cpuUsage()) : driver === 'redis' ? redisCpuMs() : undefined
  return {
    mark: async (name: string) => {
      at.set(name, { store: store(), database: await databaseCpu(admin) })
    },
    phase: (phase: Phase): Outside => {
      const start = at.get(`${phase}:start`)
      const end = at.get(`${phase}:end`)
      if (!start || !end) return {}
      let database = 0
      for (const [pid, ms] of end.database) database += ms - (start.database.get(pid) ?? 0)
      return {
        storeCpuMs:
          start.store !== undefined && end.store !== undefined ? end.store - start.store : undefined,
        databaseCpuMs: admin ? database : undefined,
      }
    },
  }
}

interface DriverResult {
  driver: Driver
  rounds: (Record<Phase, PhaseRun> & { outside: Record<Phase, Outside> })[]
}

async function profileInProcess(
  modules: Modules,
  driver: 'memory' | 'redis',
  url: string | undefined,
  admin: pg.Pool | undefined,
): Promise<DriverResult> {
  const { db, close } = await openDatabase(url)
  const ipc =
    driver === 'memory'
      ? await modules.ipc.createIpc({ driver: 'memory' })
      : await modules.ipc.createIpc({ driver: 'redis', url: redisUrl, keyPrefix: `${uniqueId('wbprof')}:` })
  const meter = outsideMeter(driver, admin)
  const outsides: Record<Phase, Outside>[] = []
  try {
    const rounds = await runRounds(modules, ipc, db, async (name) => {
      await meter.mark(name)
      if (name === 'flush:end')
        outsides.push({ enqueue: meter.phase('enqueue'), flush: meter.phase('flush') })
    })
    return {
      driver,
      rounds: rounds.map((r, i) => ({ ...r, outside: outsides[i] as Record<Phase, Outside> })),
    }
  } finally {
    // What the buffer leaves in the store (the seqlock, the epoch): Redis would keep it.
    const left: string[] = await ipc.keys('')
    if (left.length > 0) await ipc.del(...left)
    await ipc.close()
    await close()
  }
}

type WorkerMessage =
  | { wbProfile: true; type: 'mark'; name: string }
  | { wbProfile: true; type: 'done'; rounds: unknown }

async function profileCluster(modules: Modules, url: string | undefined, admin: pg.Pool | undefined) {
  const primary = await modules.ipc.createIpc({ driver: 'cluster' })
  cluster.setupPrimary({
    exec: fileURLToPath(import.meta.url),
    execArgv: ['--import', 'tsx', '--conditions=source'],
  })
  const worker: Worker = cluster.fork({ PROFILE_WORKER: '1', PROFILE_DATABASE_URL: url ?? '' })
  const meter = outsideMeter('cluster', admin)
  const outsides: Record<Phase, Outside>[] = []
  try {
    const rounds = await new Promise<DriverResult['rounds']>((resolvePromise, reject) => {
      worker.once('exit', (code) => reject(new Error(`the profiling worker exited (${code})`)))
      worker.on('message', (message: WorkerMessage) => {
        if (!message?.wbProfile) return
        if (message.type === 'done') {
          const done = message.rounds as Record<Phase, PhaseRun>[]
          resolvePromise(done.map((r, i) => ({ ...r, outside: outsides[i] as Record<Phase, Outside> })))
          return
        }
        void meter.mark(message.name).then(() => {
          if (message.name === 'flush:end')
            outsides.push({ enqueue: meter.phase('enqueue'), flush: meter.phase('flush') })
          worker.send({ wbProfile: true, type: 'marked', name: message.name })
        })
      })
    })
    return { driver: 'cluster' as const, rounds }
  } finally {
    worker.removeAllListeners('exit')
    worker.kill()
    await primary.close()
  }
}

/** The worker side of the cluster run: the buffer on the cluster driver, marks sent to the primary. */
async function clusterWorker(): Promise<void> {
  const modules = await loadModules()
  const ipc = await modules.ipc.createIpc({ driver: 'cluster' })
  const { db, close } = await openDatabase(process.env.PROFILE_DATABASE_URL || undefined)
  const waiting = new Map<string, () => void>()
  process.on('message', (message: { wbProfile?: boolean; type?: string; name?: string }) => {
    if (message?.wbProfile && message.type === 'marked') waiting.get(message.name ?? '')?.()
  })
  const mark = (name: string) =>
    new Promise<void>((done) => {
      waiting.set(name, done)
      process.send?.({ wbProfile: true, type: 'mark', name })
    })
  const rounds = await runRounds(modules, ipc, db, mark)
  process.send?.({ wbProfile: true, type: 'done', rounds })
  await ipc.close()
  await close()
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

function report(results: DriverResult[]): void {
  const dir = process.env.PROFILE_CPUPROF_DIR
  if (dir) mkdirSync(dir, { recursive: true })
  for (const { driver, rounds } of results) {
    console.log(
      `\n## ${driver} driver, ${DB_KIND}: ${fmt(ROWS)} rows, ${rounds.length} rounds (median, min-max)`,
    )
    for (const phase of PHASES) {
      const wall = spread(rounds.map((r) => r[phase].wallMs))
      const cpu = spread(rounds.map((r) => r[phase].cpuMs))
      const rate = spread(rounds.map((r) => ROWS / (r[phase].wallMs / 1000)))
      const store = rounds
        .map((r) => r.outside?.[phase]?.storeCpuMs)
        .filter((x): x is number => x !== undefined)
      const database = rounds
        .map((r) => r.outside?.[phase]?.databaseCpuMs)
        .filter((x): x is number => x !== undefined)
      const parts = [
        `${phase}: ${fmt(wall.median)} ms wall (${fmt(wall.min)}-${fmt(wall.max)}), ${fmt(rate.median)} rows/s`,
        `buffer process CPU ${fmt(cpu.median)} ms (${fmt(cpu.min)}-${fmt(cpu.max)}, ${((cpu.median * 1000) / ROWS).toFixed(2)} µs/row)`,
      ]
      if (store.length) parts.push(`store CPU ${fmt(spread(store).median)} ms`)
      if (database.length) parts.push(`PostgreSQL CPU ${fmt(spread(database).median)} ms`)
      console.log(`- ${parts.join('; ')}`)
      const profile = rounds[rounds.length - 1]?.[phase].profile
      if (!profile) continue
      if (dir) writeFileSync(join(dir, `${driver}-${DB_KIND}-${phase}.cpuprofile`), JSON.stringify(profile))
      printSummary(summarize(profile, 8))
    }
  }
}

function printSummary(summary: ProfileSummary): void {
  const share = (ms: number) => `${fmt(ms)} ms (${Math.round((ms / summary.totalMs) * 100)}%)`
  console.log(`  profile of the last round (${fmt(summary.totalMs)} ms sampled), self time by category:`)
  for (const [name, ms] of summary.categories)
    if (ms >= summary.totalMs * 0.01) console.log(`    ${share(ms).padEnd(16)} ${name}`)
  console.log('  top functions:')
  for (const [name, ms] of summary.functions) console.log(`    ${share(ms).padEnd(16)} ${name}`)
}

async function main(): Promise<void> {
  const modules = await loadModules()
  console.log(
    `write-buffer insert profile (${process.env.WB_ROOT || 'this checkout'}); ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
  let url: string | undefined
  let admin: pg.Pool | undefined
  let drop = async () => {}
  if (DB_KIND === 'postgres') {
    const reason = await probePostgres()
    if (reason) throw new Error(`PostgreSQL is needed (PROFILE_DB=pglite runs without): ${reason}`)
    const database = await createTestDatabase('wbprof')
    url = database.url
    admin = new pg.Pool({ connectionString: url, max: 1 })
    admin.on('error', () => {})
    await admin.query(DDL)
    drop = async () => {
      await admin?.end()
      await database.drop()
    }
  }
  const results: DriverResult[] = []
  try {
    for (const driver of DRIVERS) {
      if (driver === 'redis' && (await probeRedis())) {
        console.log('skipping the Redis driver: no Redis server')
        continue
      }
      if (driver === 'cluster') results.push(await profileCluster(modules, url, admin))
      else results.push(await profileInProcess(modules, driver, url, admin))
    }
  } finally {
    await drop()
  }
  report(results)
  console.log(
    `\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  )
}

const entry = cluster.isWorker && process.env.PROFILE_WORKER ? clusterWorker() : main()
entry.then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
