/**
 * Repro: when the database connection of a running push dies (PostgreSQL restarted, a
 * connection killed by a proxy or by pg_terminate_backend), the client is answered INTERNAL,
 * not the temporary UNAVAILABLE error (retryable) that a database outage must produce, and the
 * server logs it as an internal error. Seen in src/faults/postgres-outage.test.ts.
 *
 * Why: the query fails with 57P01, drizzle then runs ROLLBACK on the dead connection, which
 * throws "Client has encountered a connection error and is not queryable" (no SQLSTATE, no
 * errno); that error replaces the first one, and `toTidesyncError`
 * (packages/server/src/db/map-error.ts) finds no code on it or its causes.
 *
 * Fixed: `toTidesyncError` maps node-postgres connection-loss errors without a code
 * ("Connection terminated", "not queryable", the pool's connect timeout), anywhere in the cause
 * chain, to UNAVAILABLE. This script now exits 0; server tests: src/__tests__/map-error.test.ts and
 * src/__tests__/postgres-faults.test.ts.
 *
 * Run: npx tsx --conditions=source src/repro/connection-loss-answers-internal.ts   (needs PostgreSQL)
 * Exit code 1 = bug reproduced, 0 = fixed.
 */
import { createIpc } from '@tidesync/ipc'
import { createTidesync, ensureSchema, noopLogger } from '@tidesync/server'
import { createTestDatabase } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { ITEMS_DDL, items } from '../harness/schema.js'

const out = (line: string) => process.stdout.write(`${line}\n`)

const database = await createTestDatabase('rel_repro_conn')
const pool = new pg.Pool({ connectionString: database.url, max: 4 })
pool.on('error', () => {})
pool.on('connect', (client) => client.on('error', () => {}))
const db = drizzle(pool)
const ipc = await createIpc({ driver: 'memory' })
let reproduced = false
try {
  await ensureSchema(db)
  await db.execute(sql.raw(ITEMS_DDL))
  const tidesync = createTidesync({ db, ipc, models: { items: { table: items } }, logger: noopLogger })
  const uid = '01900000-0000-7000-8000-000000000003'
  let tick = Date.now()
  const push = (change: Record<string, unknown>) =>
    tidesync.handle(
      'sync:push',
      {
        clientId: 'c',
        changes: [{ model: 'items', uid, clock: `${new Date(tick++).toISOString()}-0000-c`, ...change }],
      },
      {},
    )
  await push({ id: '1', op: 'create', data: { owner: 'a', title: 't' } })
  // Another session holds the row, so the push's UPDATE waits on it...
  const blocker = new pg.Client({ connectionString: database.url })
  await blocker.connect()
  await blocker.query('BEGIN')
  await blocker.query('SELECT 1 FROM items WHERE uid = $1 FOR UPDATE', [uid])
  const pending = push({ id: '2', op: 'update', patch: { title: 'u' } })
  // ...and its connection is cut while it waits.
  let victim: number | undefined
  for (let i = 0; i < 200 && victim === undefined; i++) {
    const { rows } = await blocker.query(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
    )
    victim = rows[0]?.pid
    if (victim === undefined) await new Promise((resolve) => setTimeout(resolve, 25))
  }
  if (victim === undefined) throw new Error('the push never waited on the row lock')
  await blocker.query('SELECT pg_terminate_backend($1)', [victim])
  const reply = await pending
  await blocker.query('ROLLBACK')
  await blocker.end()
  out(`answer to the push whose connection died: ${JSON.stringify(reply.error ?? reply.result)}`)
  reproduced = reply.error?.code !== 'UNAVAILABLE'
  out(
    reproduced
      ? 'BUG REPRODUCED: a lost database connection is answered as an internal error'
      : 'not reproduced (fixed?)',
  )
} finally {
  await ipc.close()
  await pool.end()
  await database.drop()
}
process.exit(reproduced ? 1 : 0)
