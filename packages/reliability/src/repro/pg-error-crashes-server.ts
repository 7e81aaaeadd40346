/**
 * Repro: a PostgreSQL restart kills a tidesync server process unless the app gives every pooled
 * node-postgres client an 'error' listener. Seen in src/faults/postgres-outage.test.ts: both
 * servers died ("Emitted 'error' event on Client instance") when PostgreSQL stopped.
 *
 * Why: node-postgres re-emits the errors of IDLE clients on the pool (`pool.on('error')`), but a
 * client checked out by a transaction that is awaiting something else between two queries emits
 * 'error' on itself, and an 'error' event without a listener ends the process. tidesync holds
 * transactions open across IPC calls (the server's pending-value overlay inside `stageChange`,
 * the write buffer's seqlock inside its flush), so the window is wide. The server/write-buffer
 * READMEs (and the demo) should show `pool.on('connect', (c) => c.on('error', log))`; the
 * libraries could also attach it themselves through drizzle's `db.$client` when it is a pg Pool.
 *
 * Fixed: `createTidesync` (and `createWriteBuffer`) now attach these listeners to the pool behind
 * `db.$client`; the child below has no listener of its own and creates the sync service only.
 *
 * The scenario runs in a child process (it is expected to die); the connection is cut with
 * pg_terminate_backend, like a restart does.
 *
 * Run: npx tsx --conditions=source src/repro/pg-error-crashes-server.ts   (needs PostgreSQL)
 * Exit code 1 = the process died (hazard reproduced), 0 = it survived.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createIpc } from '@tidesync/ipc'
import { createTidesync, noopLogger } from '@tidesync/server'
import { createTestDatabase } from '@tidesync/test-env'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { items } from '../harness/schema.js'

const out = (line: string) => process.stdout.write(`${line}\n`)

if (process.argv[2] === 'child') {
  const url = process.argv[3]!
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  // No listener of the app's own: creating the sync service must be enough.
  const db = drizzle(pool)
  const ipc = await createIpc({ driver: 'memory' })
  createTidesync({ db, ipc, models: { items: { table: items } }, logger: noopLogger })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await db
    .transaction(async (tx) => {
      const { rows } = await tx.execute('SELECT pg_backend_pid() AS pid')
      await admin.query('SELECT pg_terminate_backend($1)', [(rows[0] as { pid: number }).pid])
      await new Promise((resolve) => setTimeout(resolve, 500)) // awaiting the IPC store, say
    })
    .catch(() => undefined)
  await admin.end()
  await ipc.close()
  await pool.end()
  out('child: survived')
  process.exit(0)
} else {
  const database = await createTestDatabase('rel_repro_pgerr')
  try {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--conditions=source', fileURLToPath(import.meta.url), 'child', database.url],
      { encoding: 'utf8', timeout: 60_000 },
    )
    const died = child.status !== 0
    out(
      died
        ? `child died: ${(child.stderr.match(/Emitted 'error' event[^\n]*/) ?? [child.stderr.slice(0, 200)])[0]}`
        : child.stdout.trim(),
    )
    out(died ? 'HAZARD REPRODUCED: an unhandled pg client error ended the process' : 'not reproduced')
    process.exitCode = died ? 1 : 0
  } finally {
    await database.drop()
  }
}
