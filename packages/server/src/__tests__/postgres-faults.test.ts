import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureSchema } from '../db/ensure-schema.js'
import { noopLogger } from '../logger.js'
import type { PushResult, Reply } from '../protocol.js'
import { createTidesync, type Tidesync } from '../tidesync.js'
import type { Logger, TidesyncDb } from '../types.js'
import { clientClock } from './fixtures/clock.js'
import { todos, todosDdl } from './fixtures/schema.js'

const hasPostgres = await requireServer('postgres')
const CHILD = fileURLToPath(new URL('./fixtures/pg-error-child.ts', import.meta.url))

describe.runIf(hasPostgres)('PostgreSQL faults', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let pool: pg.Pool
  let db: TidesyncDb
  let ipc: Ipc
  let admin: pg.Client
  const logged: { level: string; message: string }[] = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message) => logged.push({ level: 'warn', message }),
    error: (message) => logged.push({ level: 'error', message }),
  }
  let tidesync: Tidesync
  let tick = Date.parse('2030-01-01T00:00:00Z')

  beforeAll(async () => {
    database = await createTestDatabase('tidesync_server_faults')
    pool = new pg.Pool({ connectionString: database.url, max: 8 })
    db = drizzle(pool) as unknown as TidesyncDb
    ipc = await createIpc({ driver: 'memory' })
    await ensureSchema(db)
    await db.execute(sql.raw(todosDdl))
    tidesync = createTidesync({ db, ipc, logger, models: { todos: { table: todos } } })
    admin = new pg.Client({ connectionString: database.url })
    await admin.connect()
  })

  afterAll(async () => {
    await admin?.end()
    await ipc?.close()
    await pool?.end()
    await database?.drop()
  })

  function push(clientId: string, change: Record<string, unknown>): Promise<Reply<PushResult>> {
    return tidesync.handle(
      'sync:push',
      { clientId, changes: [{ model: 'todos', clock: clientClock(tick++, clientId), ...change }] },
      {},
    ) as Promise<Reply<PushResult>>
  }

  async function create(clientId: string, title: string): Promise<string> {
    const uid = uuidv7()
    const reply = await push(clientId, { id: uuidv7(), uid, op: 'create', data: { ownerId: 'u', title } })
    expect(reply.error).toBeUndefined()
    expect(reply.result?.outcomes[0]?.status).toBe('applied')
    return uid
  }

  /** A push of another server, halfway: its change id is recorded, the metadata comes next. */
  async function halfwayPush(): Promise<pg.Client> {
    const other = new pg.Client({ connectionString: database.url })
    await other.connect()
    await other.query('BEGIN')
    await other.query(`INSERT INTO tidesync_applied (client_id, change_id) VALUES ('other', $1)`, [uuidv7()])
    return other
  }

  async function finishPush(other: pg.Client): Promise<void> {
    await other.query(
      `INSERT INTO tidesync_meta (model, uid, created_at, updated_at, rev) VALUES ('todos', $1, now(), now(), nextval('tidesync_rev_seq'))`,
      [uuidv7()],
    )
    await other.query('COMMIT')
    await other.end()
  }

  it('ensureSchema does not deadlock with a push in flight when the schema exists', async () => {
    const other = await halfwayPush()
    const starting = ensureSchema(db)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await finishPush(other)
    await expect(starting).resolves.toBeUndefined()
  })

  it('ensureSchema creating a missing index waits for a push in flight, without deadlock', async () => {
    await db.execute(sql`DROP INDEX tidesync_applied_at`)
    await db.execute(sql`DROP INDEX tidesync_changes_committed_at`)
    const other = await halfwayPush()
    const starting = ensureSchema(db)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await finishPush(other)
    await starting
    const { rows } = await admin.query(
      `SELECT to_regclass('tidesync_applied_at') IS NOT NULL AS a, to_regclass('tidesync_changes_committed_at') IS NOT NULL AS c`,
    )
    expect(rows[0]).toEqual({ a: true, c: true })
  })

  it('ensureSchema from several callers while pushes run: every push and every call succeeds', async () => {
    await db.execute(sql`DROP INDEX tidesync_meta_model_rev`)
    let stop = false
    const writers = Array.from({ length: 4 }, async (_, i) => {
      let n = 0
      while (!stop || n < 3) {
        await create(`writer${i}`, `w${i}-${n++}`)
      }
      return n
    })
    const calls = Array.from({ length: 6 }, () => ensureSchema(db))
    await Promise.all(calls)
    await Promise.all(Array.from({ length: 6 }, () => ensureSchema(db)))
    stop = true
    const written = await Promise.all(writers)
    expect(written.every((n) => n >= 3)).toBe(true)
    const { rows } = await admin.query(`SELECT to_regclass('tidesync_meta_model_rev') IS NOT NULL AS ok`)
    expect(rows[0].ok).toBe(true)
  })

  it('a push whose connection is terminated is answered UNAVAILABLE, and the server keeps serving', async () => {
    const uid = await create('c', 'before')
    // Another session holds the row, so the push's UPDATE waits on it...
    const blocker = new pg.Client({ connectionString: database.url })
    await blocker.connect()
    await blocker.query('BEGIN')
    await blocker.query('SELECT 1 FROM todos WHERE uid = $1 FOR UPDATE', [uid])
    logged.length = 0
    const pending = push('c', { id: uuidv7(), uid, op: 'update', patch: { title: 'lost' } })
    // ...and its connection is cut while it waits.
    let victim: number | undefined
    for (let i = 0; i < 400 && victim === undefined; i++) {
      const { rows } = await admin.query(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1`,
        [(blocker as unknown as { processID: number }).processID],
      )
      victim = rows[0]?.pid
      if (victim === undefined) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    expect(victim).toBeDefined()
    await admin.query('SELECT pg_terminate_backend($1)', [victim])
    const reply = await pending
    await blocker.query('ROLLBACK')
    await blocker.end()
    expect(reply.error).toMatchObject({ code: 'UNAVAILABLE', retryable: true })
    expect(logged.filter((entry) => entry.level === 'error')).toEqual([])
    // The server keeps serving: the retry (a new change id) and a read succeed.
    const retry = await push('c', { id: uuidv7(), uid, op: 'update', patch: { title: 'after' } })
    expect(retry.result?.outcomes[0]?.status).toBe('applied')
    const [row] = await db.select().from(todos).where(sql`${todos.uid} = ${uid}`)
    expect(row?.title).toBe('after')
  })

  it('a connection terminated mid-transaction does not end the process (no listener of the app)', () => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--conditions=source', CHILD], {
      env: { ...process.env, DATABASE_URL: database.url },
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(child.stderr).not.toMatch(/Emitted 'error' event/)
    expect(child.status).toBe(0)
    const report = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}')
    expect(report).toMatchObject({ survived: true, outcome: 'failed', one: 1 })
    expect(report.logged).toBeGreaterThan(0)
  })

  it('the pool gets its listeners once, however many services are created', () => {
    const before = [pool.listenerCount('connect'), pool.listenerCount('error')]
    createTidesync({ db, ipc, logger: noopLogger, models: { todos: { table: todos } } })
    createTidesync({ db, ipc, logger: noopLogger, models: { todos: { table: todos } } })
    expect([pool.listenerCount('connect'), pool.listenerCount('error')]).toEqual(before)
    expect(before).toEqual([1, 1])
  })
})
