/**
 * SIGTERM/SIGINT with real processes (children/signal-child.ts): pending writes that exist only
 * in the memory IPC store land in PostgreSQL before the process ends, and the pool and the IPC
 * store are closed only after that flush (odac closed the IPC store first: the flush found
 * nothing and all pending writes were lost). `handleSignals: false` opts out.
 * A batch job stuck in a bare `for (;;) await increment()` loop (children/loop-child.ts) is
 * stopped by SIGTERM too, and flushes every increment it acknowledged.
 */
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CRASH_DDL } from './children/crash-schema.js'
import { tempDir } from './env.js'
import { type Child, killChildren, startChild } from './processes.js'

const INCREMENTS = 400
const INSERTS = 60
/** Increments the looping children acknowledge before they get SIGTERM. */
const LOOPING = 1000

/** Waits until `check` holds (polling); fails when the child exits first or after 30 s. */
async function until(check: () => boolean, child: Child): Promise<void> {
  let exited = false
  void child.exited.then(() => {
    exited = true
  })
  for (const deadline = Date.now() + 30_000; !check(); await sleep(20)) {
    if (exited || Date.now() > deadline) throw new Error(`the child did not get there\n${child.stderr()}`)
  }
}

const hasPostgres = await requireServer('postgres')
const hasRedis = hasPostgres && (await requireServer('redis'))

describe.runIf(hasPostgres)('shutdown signals (real child processes)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let pool: pg.Pool

  beforeAll(async () => {
    database = await createTestDatabase('wbsignals')
    pool = new pg.Pool({ connectionString: database.url, max: 2 })
    pool.on('error', () => {}) // idle clients terminated by the forced drop at the end
    await pool.query(CRASH_DDL)
    await pool.query('insert into crash_counters (id) select g from generate_series(1, 20) g')
  })

  afterAll(async () => {
    await killChildren()
    await pool?.end()
    await database?.drop()
  })

  const cases = [
    { row: 1, how: 'default', signal: 'SIGTERM', exit: { code: null, signal: 'SIGTERM' }, lands: true },
    { row: 2, how: 'default', signal: 'SIGINT', exit: { code: null, signal: 'SIGINT' }, lands: true },
    { row: 3, how: 'app-handler', signal: 'SIGTERM', exit: { code: 0, signal: null }, lands: true },
    { row: 4, how: 'opt-out', signal: 'SIGTERM', exit: { code: null, signal: 'SIGTERM' }, lands: false },
  ] as const

  test('pending writes are flushed before the process ends and its connections close; handleSignals: false opts out', async () => {
    // The four children run at once (each on its own row and insert names).
    await Promise.all(
      cases.map(async ({ row, how, signal, exit }) => {
        const child = startChild('signal-child.ts', {
          DATABASE_URL: database.url,
          HOW: how,
          ROW: String(row),
          INCREMENTS: String(INCREMENTS),
          INSERTS: String(INSERTS),
        })
        await child.next('written')
        child.process.kill(signal)
        const ended = await child.exited
        expect(ended, `${how} ${signal}: ${child.stderr()}`).toEqual(exit)
      }),
    )
    const rows = await pool.query<{ id: number; n: string }>('select id, n from crash_counters order by id')
    const inserted = await pool.query<{ how: string; n: number }>(
      `select split_part(op, ':', 1) as how, count(*)::int as n from crash_events group by 1 order by 1`,
    )
    expect(rows.rows.slice(0, cases.length).map((r) => Number(r.n))).toEqual(
      cases.map((c) => (c.lands ? INCREMENTS : 0)),
    )
    expect(inserted.rows).toEqual([
      { how: 'app-handler', n: INSERTS },
      { how: 'default', n: 2 * INSERTS },
    ])
  }, 60_000)

  const loops = [
    { row: 11, driver: 'memory', durability: 'checkpoint' },
    { row: 12, driver: 'memory', durability: 'journal' },
    { row: 13, driver: 'cluster', durability: 'checkpoint' },
    { row: 14, driver: 'redis', durability: 'checkpoint' },
  ] as const

  test('a bare `for (;;) await increment()` loop is stopped by SIGTERM: it flushes every acknowledged increment and ends', async () => {
    // Every case at once, each on its own row. Redis: the store itself is durable (no LMDB).
    const runs = loops
      .filter((loop) => loop.driver !== 'redis' || hasRedis)
      .map(async ({ row, driver, durability }) => {
        const dir = tempDir('wb-loop-')
        try {
          const countFile = `${dir.path}/count`
          const child = startChild('loop-child.ts', {
            DATABASE_URL: database.url,
            DRIVER: driver,
            DURABILITY: durability,
            DIR: `${dir.path}/lmdb`,
            REDIS_URL: redisUrl,
            KEY_PREFIX: `${uniqueId('wbloop')}:`,
            ROW: String(row),
            LOOPING: String(LOOPING),
            COUNT_FILE: countFile,
          })
          const name = `${driver}/${durability}`
          const read = () => Number(readFileSync(countFile, 'utf8').trim())
          // Polls the file: a loop that never yields to the event loop sends no message either.
          await until(() => existsSync(countFile) && read() >= LOOPING, child)
          child.process.kill('SIGTERM')
          const ended = await Promise.race([child.exited, sleep(20_000).then(() => 'still running' as const)])
          const acknowledged = read()
          const stored = await pool.query<{ n: string }>('select n from crash_counters where id = $1', [row])
          return {
            name,
            ended,
            acknowledged: acknowledged >= LOOPING,
            stored: Number(stored.rows[0]?.n) === acknowledged ? 'all acknowledged' : stored.rows[0]?.n,
            stderr: child.stderr(),
          }
        } finally {
          dir.remove()
        }
      })
    const results = await Promise.all(runs)
    expect(
      results.map(({ stderr: _, ...result }) => result),
      results.map((r) => r.stderr).join('\n'),
    ).toEqual(
      results.map(({ name }) => ({
        name,
        ended: { code: null, signal: 'SIGTERM' },
        acknowledged: true,
        stored: 'all acknowledged',
      })),
    )
  }, 60_000)
})
