/**
 * SIGTERM/SIGINT with real processes (children/signal-child.ts): pending writes that exist only
 * in the memory IPC store land in PostgreSQL before the process ends, and the pool and the IPC
 * store are closed only after that flush (odac closed the IPC store first: the flush found
 * nothing and all pending writes were lost). `handleSignals: false` opts out.
 */
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CRASH_DDL } from './children/crash-schema.js'
import { killChildren, startChild } from './processes.js'

const INCREMENTS = 400
const INSERTS = 60

const hasPostgres = await requireServer('postgres')

describe.runIf(hasPostgres)('shutdown signals (real child processes)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let pool: pg.Pool

  beforeAll(async () => {
    database = await createTestDatabase('wbsignals')
    pool = new pg.Pool({ connectionString: database.url, max: 2 })
    pool.on('error', () => {}) // idle clients terminated by the forced drop at the end
    await pool.query(CRASH_DDL)
    await pool.query('insert into crash_counters (id) select g from generate_series(1, 4) g')
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
    expect(rows.rows.map((r) => Number(r.n))).toEqual(cases.map((c) => (c.lands ? INCREMENTS : 0)))
    expect(inserted.rows).toEqual([
      { how: 'app-handler', n: INSERTS },
      { how: 'default', n: 2 * INSERTS },
    ])
  }, 60_000)
})
