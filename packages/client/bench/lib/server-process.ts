/**
 * A tidesync server in its own process, as a deployment runs it (the client never shares its
 * thread with the server): socket.io on a random port, the memory IPC driver, and PostgreSQL
 * (a throwaway database on DATABASE_URL) when it answers, else PGlite (`BENCH_DB=pglite`
 * forces it). Forked by `server-handle.ts`; talks over the IPC channel:
 *
 * - argv[2]: JSON `{ sets: [{ projectId, count }] }`, records seeded before the server starts
 *   (plain SQL inserts, as an import would: change capture logs them and writes their metadata;
 *   the capture reader's cursor is then moved past them, so they are not published live).
 * - sends `{ type: 'ready', url, database }`.
 * - `POST <url>/bench/commits` with a JSON list of uids answers when each record's last change
 *   was published (right after its commit), in epoch milliseconds with sub-ms precision
 *   (`performance.timeOrigin + performance.now()`, comparable across processes); null where
 *   none was (see `commit-times.ts`).
 * - `{ type: 'close' }` stops it (and drops the database).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { createIpc, type Ipc } from '@tidesync/ipc'
import type { LiveMessage } from '@tidesync/protocol'
import { createTidesync, ensureSchema, installTidesync, type TidesyncDb } from '@tidesync/server'
import { createTestDatabase, probePostgres } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { Server } from 'socket.io'
import { todos } from '../../src/__tests__/helpers/schema.js'

const DDL = [
  `CREATE TABLE IF NOT EXISTS todos (
    uid uuid PRIMARY KEY,
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    project_id text NOT NULL DEFAULT 'inbox',
    likes integer NOT NULL DEFAULT 0,
    due_at timestamp(3) with time zone,
    tags jsonb)`,
  // The subsets the benchmark syncs are `{ projectId }`: an app indexes what it filters by.
  'CREATE INDEX IF NOT EXISTS todos_project_uid ON todos (project_id, uid)',
]

export interface SeedSet {
  projectId: string
  count: number
}

const now = () => performance.timeOrigin + performance.now()

async function openDatabase(): Promise<{ db: TidesyncDb; kind: string; close: () => Promise<void> }> {
  const wantPglite = process.env.BENCH_DB === 'pglite'
  if (!wantPglite && (await probePostgres()) === null) {
    const database = await createTestDatabase('tidesync_bench')
    const pool = new pg.Pool({ connectionString: database.url, max: 8 })
    return {
      db: drizzleNodePg(pool) as unknown as TidesyncDb,
      kind: 'postgres',
      close: async () => {
        await pool.end()
        await database.drop()
      },
    }
  }
  const pglite = new PGlite()
  return { db: drizzlePglite(pglite) as unknown as TidesyncDb, kind: 'pglite', close: () => pglite.close() }
}

/** Inserts `count` records in one project, 50,000 per statement (uids look random, as UUIDs do). */
async function seed(db: TidesyncDb, { projectId, count }: SeedSet): Promise<void> {
  for (let start = 0; start < count; start += 50_000) {
    const end = Math.min(count, start + 50_000) - 1
    await db.execute(sql`
      INSERT INTO todos (uid, title, done, project_id, likes)
      SELECT md5(${projectId} || ':' || i)::uuid, 'todo ' || i, i % 3 = 0, ${projectId}, i % 7
      FROM generate_series(${start}::int, ${end}::int) AS i`)
  }
}

/** Wraps the IPC so that every live message's publication time is kept per record. */
function recordPublications(ipc: Ipc, published: Map<string, number>): Ipc {
  return new Proxy(ipc, {
    get(target, property) {
      if (property === 'publish') {
        return (channel: string, message: unknown) => {
          const at = now()
          for (const change of (message as LiveMessage).changes ?? []) published.set(change.uid, at)
          return target.publish(channel, message as never)
        }
      }
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

async function main(): Promise<void> {
  const { sets } = JSON.parse(process.argv[2] ?? '{"sets":[]}') as { sets: SeedSet[] }
  const database = await openDatabase()
  const { db } = database
  for (const statement of DDL) await db.execute(sql.raw(statement))
  await ensureSchema(db)
  const published = new Map<string, number>()
  const ipc = recordPublications(await createIpc({ driver: 'memory' }), published)
  const http = createServer()
  const io = new Server(http, { maxHttpBufferSize: 64e6 })
  // Set capture up (the triggers), seed, then move the reader past the seeded changes.
  const models = { todos: { table: todos, counters: ['likes'] } }
  await createTidesync({ db, ipc, models }).setupCapture()
  for (const set of sets) await seed(db, set)
  // Planner statistics, as a database in production has them (autovacuum comes later).
  await db.execute(sql.raw('ANALYZE'))
  await db.execute(sql`
    INSERT INTO tidesync_state (key, value)
    SELECT 'captured:todos', coalesce(max(rev), 0) FROM tidesync_changes WHERE model = 'todos'
    ON CONFLICT (key) DO UPDATE SET value = excluded.value`)
  const tidesync = await installTidesync(io, {
    db,
    ipc,
    models,
    authenticate: () => ({}),
    maxMessageBytes: 32e6,
    capture: process.env.BENCH_CAPTURE === '0' ? false : undefined,
    logger: { debug() {}, info() {}, warn: console.warn, error: console.error },
  })
  // POST /bench/commits with a JSON list of uids: when each one's last change was published.
  http.on('request', (req, res) => {
    if (req.url !== '/bench/commits' || req.method !== 'POST') return
    let body = ''
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', () => {
      const uids = JSON.parse(body) as string[]
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(uids.map((uid) => published.get(uid) ?? null)))
    })
  })
  http.listen(0, '127.0.0.1')
  await new Promise((resolve) => http.once('listening', resolve))
  const { port } = http.address() as AddressInfo

  const close = async () => {
    await tidesync.close()
    io.disconnectSockets(true)
    await new Promise<void>((resolve) => io.close(() => resolve()))
    await ipc.close()
    await database.close()
    process.exit(0)
  }
  process.on('message', (message: { type: string }) => {
    if (message.type === 'close') void close()
  })
  process.on('disconnect', () => void close())
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}`, database: database.kind })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
