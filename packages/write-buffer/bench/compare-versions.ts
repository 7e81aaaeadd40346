/**
 * Buffered inserts of several checkouts of the write buffer in one run, rounds alternating, so
 * each comparison is made under the same machine load: end to end (64 callers, the defaults:
 * auto-flush past maxQueueSize, then the final flush), and enqueue and flush apart (flushes
 * held off until one `flush()`).
 *
 *   WB_ROOTS=before=/tmp/wb-HEAD,after=. npx tsx --conditions=source bench/compare-versions.ts
 *
 * A root is a directory holding packages/write-buffer/src and packages/ipc/src whose imports
 * resolve (`.`: this checkout), e.g. `git archive <commit> packages/write-buffer/src
 * packages/ipc/src packages/ipc/package.json | tar -x -C <dir>` with a node_modules next to it
 * that links this repository's. Env: WB_ROOTS, COMPARE_DBS (default postgres,pglite),
 * COMPARE_ROUNDS (default 5), COMPARE_ROWS (default 100000), DATABASE_URL.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { bigserial, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'
import { type BenchDatabase, openPglite, openPostgres } from './lib/databases.js'
import { ratio, show, spread } from './lib/stats.js'

const ROOTS = (process.env.WB_ROOTS ?? 'this=.').split(',').map((pair) => {
  const [label, path] = pair.includes('=') ? pair.split('=') : [pair, pair]
  return { label: label as string, path: path as string }
})
const DBS = (process.env.COMPARE_DBS ?? 'postgres,pglite').split(',')
const ROUNDS = Number(process.env.COMPARE_ROUNDS ?? 5)
const ROWS = Number(process.env.COMPARE_ROWS ?? 100_000)
const CALLERS = 64

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

// biome-ignore lint/suspicious/noExplicitAny: modules of another checkout
type Modules = { wb: any; ipc: any }

async function load(path: string): Promise<Modules> {
  if (path === '.') return { wb: await import('@tidesync/write-buffer'), ipc: await import('@tidesync/ipc') }
  return {
    wb: await import(resolve(path, 'packages/write-buffer/src/index.ts')),
    ipc: await import(resolve(path, 'packages/ipc/src/index.ts')),
  }
}

/** One round of one checkout: end-to-end rate, then enqueue-only and flush-only rates. */
async function round(modules: Modules, database: BenchDatabase): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const split of [false, true]) {
    await database.exec('truncate bench_events')
    const dir = mkdtempSync(join(tmpdir(), 'wb-compare-'))
    const ipc = await modules.ipc.createIpc({ driver: 'memory' })
    const buffer = await modules.wb.openWriteBuffer({
      ipc,
      databases: { default: database.db },
      checkpointPath: dir,
      handleSignals: false,
      logger: { debug() {}, info() {}, warn: console.warn, error: console.error },
      ...(split ? { maxQueueSize: 1e9, flushInterval: 3_600_000 } : {}),
    })
    const table = buffer.table(events)
    let next = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (next < ROWS) {
          const i = next++
          await table.insert({ kind: 'view', userId: (i % 1000) + 1, payload: { i } })
        }
      }),
    )
    const queued = performance.now()
    await buffer.flush()
    const flushed = performance.now()
    await buffer.close()
    await ipc.close()
    rmSync(dir, { recursive: true, force: true })
    const found = await database.scalar('select count(*) from bench_events')
    if (found !== ROWS) throw new Error(`expected ${ROWS} rows, found ${found}`)
    if (split) {
      out['enqueue only'] = ROWS / ((queued - started) / 1000)
      out['flush only'] = ROWS / ((flushed - queued) / 1000)
    } else out['end to end'] = ROWS / ((flushed - started) / 1000)
  }
  return out
}

async function main(): Promise<void> {
  const modules = await Promise.all(ROOTS.map((root) => load(root.path)))
  console.log(
    `buffered inserts, ${ROWS.toLocaleString('en-US')} rows, ${ROUNDS} rounds alternating: ${ROOTS.map((r) => r.label).join(', ')}`,
  )
  const loads: number[] = []
  for (const name of DBS) {
    const runs = ROOTS.map(() => ({}) as Record<string, number[]>)
    for (let r = 0; r < ROUNDS; r++) {
      loads.push(loadavg()[0] as number)
      for (let v = 0; v < ROOTS.length; v++) {
        // A fresh database per round and checkout: no checkout inherits another's files or ledger.
        const database = name === 'pglite' ? await openPglite(DDL) : await openPostgres(DDL)
        if (!database) return
        try {
          for (const [key, rate] of Object.entries(await round(modules[v] as Modules, database)))
            (runs[v] as Record<string, number[]>)[key] = [
              ...((runs[v] as Record<string, number[]>)[key] ?? []),
              rate,
            ]
        } finally {
          await database.close()
        }
      }
      console.warn(`${name}: round ${r + 1}/${ROUNDS}`)
    }
    console.log(
      `\n${name} (rows/s, median (min-max); ratio to ${ROOTS[0]?.label}: median of per-round ratios)`,
    )
    for (const key of ['end to end', 'enqueue only', 'flush only']) {
      for (let v = 0; v < ROOTS.length; v++) {
        const rates = (runs[v] as Record<string, number[]>)[key] ?? []
        const base = (runs[0] as Record<string, number[]>)[key] ?? []
        const vs = v === 0 ? '' : `  ${show(ratio(rates, base), 'ratio')}`
        console.log(
          `  ${key.padEnd(13)} ${(ROOTS[v]?.label ?? '').padEnd(12)} ${show(spread(rates)).padEnd(32)}${vs}`,
        )
      }
    }
  }
  const loadSpread = spread(loads)
  console.log(
    `\nload average (1 min) at the rounds' starts: median ${loadSpread.median.toFixed(1)} (${loadSpread.min.toFixed(1)}-${loadSpread.max.toFixed(1)})`,
  )
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
