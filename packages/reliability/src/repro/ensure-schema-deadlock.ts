/**
 * Repro: `ensureSchema` (@tidesync/server) deadlocks with a concurrent `sync:push` when a server
 * starts (or restarts) while another server is taking writes on the same database.
 *
 * Why: ensureSchema runs every DDL statement in ONE transaction. `CREATE INDEX IF NOT EXISTS`
 * takes a SHARE lock on its table even when the index exists, and the transaction keeps it:
 * it locks tidesync_meta, then tidesync_changes, then tidesync_applied. A push transaction
 * inserts into tidesync_applied first (ROW EXCLUSIVE), then writes tidesync_meta. Lock order
 * applied -> meta against meta -> applied: PostgreSQL aborts one of them with 40P01. When the
 * victim is ensureSchema, the starting server crashes; under steady traffic it does so on every
 * attempt (seen in src/faults/server-kill.test.ts before the harness stopped calling it).
 *
 * Fixed: ensureSchema looks every object up first (`to_regclass`) and runs no DDL when all
 * exist; a missing object is created in its own short transaction (advisory lock, one table lock
 * at most). This script now exits 0; server test: src/__tests__/postgres-faults.test.ts.
 *
 * Run: npx tsx --conditions=source src/repro/ensure-schema-deadlock.ts   (needs PostgreSQL)
 * Exit code 1 = bug reproduced, 0 = fixed.
 */
import { ensureSchema } from '@tidesync/server'
import { createTestDatabase } from '@tidesync/test-env'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'

const out = (line: string) => process.stdout.write(`${line}\n`)

const database = await createTestDatabase('rel_repro_schema')
const pool = new pg.Pool({ connectionString: database.url, max: 4 })
const db = drizzle(pool)
let reproduced = false
try {
  await ensureSchema(db) // the first server created the schema
  // Another server's push, halfway: it recorded the change id, it will write the metadata next.
  const push = new pg.Client({ connectionString: database.url })
  await push.connect()
  await push.query('BEGIN')
  await push.query(`INSERT INTO tidesync_applied (client_id, change_id) VALUES ('client', 'change-1')`)
  // A second server starts now.
  const starting = ensureSchema(db).then(
    () => 'ensureSchema: ok',
    (error: Error & { cause?: { code?: string } }) =>
      `ensureSchema: ${error.cause?.code ?? ''} ${error.message.split('\n')[0]}`,
  )
  await new Promise((resolve) => setTimeout(resolve, 300))
  const pushed = push
    .query(
      `INSERT INTO tidesync_meta (model, uid, created_at, updated_at, rev) VALUES ('items', 'u1', now(), now(), 1)`,
    )
    .then(
      () => 'push: ok',
      (error: Error & { code?: string }) => `push: ${error.code} ${error.message}`,
    )
  const results = await Promise.all([starting, pushed])
  await push.query('ROLLBACK').catch(() => undefined)
  await push.end()
  out(results.join('\n'))
  reproduced = results.some((line) => line.includes('40P01') || line.includes('deadlock'))
  out(reproduced ? 'BUG REPRODUCED: deadlock between ensureSchema and a push' : 'not reproduced (fixed?)')
} finally {
  await pool.end()
  await database.drop()
}
process.exit(reproduced ? 1 : 0)
