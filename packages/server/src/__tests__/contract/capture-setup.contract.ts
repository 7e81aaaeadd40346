import { createIpc, type Ipc } from '@tidesync/ipc'
import { drizzle } from 'drizzle-orm/node-postgres'
import { pgTable, text, uuid } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { TidesyncConfigError } from '../../errors.js'
import { captureStatements } from '../../index.js'
import { noopLogger } from '../../logger.js'
import { createTidesync } from '../../tidesync.js'
import type { ModelConfig, TidesyncDb } from '../../types.js'
import { type CaptureDatabase, captureDatabase, changesOf, metaOf } from '../fixtures/capture-env.js'
import type { TestDatabase } from '../fixtures/databases.js'
import { todos } from '../fixtures/schema.js'
import type { CaptureEnv } from './capture-env.js'
import type { TestCtx } from './env.js'

/** A model whose drizzle definition names a column (`note`) its table lacks. */
const broken = pgTable('capture_broken', {
  uid: uuid('uid').primaryKey(),
  title: text('title').notNull(),
  note: text('note'),
})
const brokenDdl = 'CREATE TABLE IF NOT EXISTS capture_broken (uid uuid PRIMARY KEY, title text NOT NULL)'
const missing = pgTable('capture_missing', { uid: uuid('uid').primaryKey() })

const todoModel: ModelConfig<TestCtx> = { table: todos, counters: ['likes'] }

/** Every capture object in the catalog with its oid: functions, triggers, staging tables. */
async function captureObjects(db: CaptureDatabase): Promise<string[]> {
  const rows = await db.rows<{ o: string }>(`
    SELECT 'function ' || proname || ' ' || oid::text AS o FROM pg_proc WHERE proname LIKE 'tidesync_capture%'
    UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || '.' || tgname || ' ' || oid::text
      FROM pg_trigger WHERE tgname LIKE 'tidesync_capture%'
    UNION ALL SELECT 'relation ' || relname || ' ' || oid::text FROM pg_class WHERE relname LIKE 'tidesync_capture%'
    ORDER BY 1`)
  return rows.map((r) => r.o)
}

/** A tidesync instance whose every statement is recorded in `log`. */
function loggedTidesync(database: TestDatabase, ipc: Ipc, log: string[]) {
  return createTidesync<TestCtx>({
    db: database.withQueryLog((query) => log.push(query)),
    ipc,
    logger: noopLogger,
    models: { todos: todoModel },
  })
}

const DDL = /^\s*(CREATE|DROP|ALTER)\b/i

/**
 * A database with the metadata tables and no capture objects: a fresh one on PostgreSQL; on
 * PGlite (where a new instance costs seconds of WASM start-up) the suite's own, with every
 * capture object dropped.
 */
async function databaseWithoutCapture(env: CaptureEnv): Promise<CaptureDatabase> {
  if (env.db.kind === 'postgres') {
    const fresh = await captureDatabase(await env.makeDatabase())
    env.defer(() => fresh.close())
    return fresh
  }
  await env.db.exec(`DO $$ DECLARE o record; BEGIN
    FOR o IN SELECT tgname, tgrelid::regclass AS rel FROM pg_trigger WHERE tgname LIKE 'tidesync_capture%' LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', o.tgname, o.rel);
    END LOOP;
    FOR o IN SELECT oid::regprocedure AS fn FROM pg_proc WHERE proname LIKE 'tidesync_capture%' LOOP
      EXECUTE format('DROP FUNCTION %s', o.fn);
    END LOOP;
    DROP TABLE IF EXISTS tidesync_capture, tidesync_capture_txs;
    DROP SEQUENCE IF EXISTS tidesync_capture_seq;
  END $$`)
  return env.db
}

export function captureSetupContract(env: () => CaptureEnv): void {
  describe('change capture: set-up', () => {
    it('setupCapture again is a no-op: one catalog look-up, no DDL, the same objects', async () => {
      const e = env()
      const server = await e.start()
      const installed = await captureObjects(e.db)
      // The commit step and the model's function; the model's 4 triggers and the commit trigger.
      const names = installed.map((o) => o.split(' ').slice(0, 2).join(' '))
      expect(names).toEqual(
        expect.arrayContaining([
          'function tidesync_capture_commit',
          'function tidesync_capture_todos',
          'trigger tidesync_capture_txs.tidesync_capture_commit',
          'trigger todos.tidesync_capture_insert',
          'trigger todos.tidesync_capture_update',
          'trigger todos.tidesync_capture_delete',
          'trigger todos.tidesync_capture_truncate',
        ]),
      )
      const ipc = await createIpc({ driver: 'memory' })
      e.defer(() => ipc.close())
      for (let i = 0; i < 2; i++) {
        const log: string[] = []
        await loggedTidesync(e.db.database, ipc, log).setupCapture()
        expect(log.filter((q) => DDL.test(q))).toEqual([])
        expect(log.length).toBeLessThanOrEqual(4)
      }
      await server.tidesync.setupCapture()
      expect(await captureObjects(e.db)).toEqual(installed)
    })

    it('a table that lost its triggers (dropped and created again) gets them back', async () => {
      const e = env()
      const server = await e.start()
      // As a migration that recreates the table does: the functions stay, the triggers go.
      await e.db.exec('DROP TRIGGER tidesync_capture_update ON todos')
      await server.tidesync.setupCapture()
      const names = (await captureObjects(e.db)).map((o) => o.split(' ').slice(0, 2).join(' '))
      expect(names).toContain('trigger todos.tidesync_capture_update')
    })

    it('a model whose columns changed gets its triggers replaced', async () => {
      const e = env()
      const ipc = await createIpc({ driver: 'memory' })
      e.defer(() => ipc.close())
      const make = (todosModel: ModelConfig<TestCtx>) =>
        createTidesync<TestCtx>({
          db: e.db.database.db,
          ipc,
          logger: noopLogger,
          models: { todos: todosModel },
        })
      // The same table, modelled without `tags` (and others): a write of only tags is no synced change.
      const narrowTable = pgTable('todos', {
        uid: uuid('uid').primaryKey(),
        ownerId: text('owner_id').notNull(),
        title: text('title').notNull(),
      })
      await make({ table: narrowTable }).setupCapture()
      const uid = uuidv7()
      await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'x')`)
      await e.db.exec(`UPDATE todos SET tags = '[1]' WHERE uid = '${uid}'`)
      expect(await changesOf(e.db.database, uid)).toHaveLength(1)
      await make(todoModel).setupCapture()
      await e.db.exec(`UPDATE todos SET tags = '[2]' WHERE uid = '${uid}'`)
      expect(await changesOf(e.db.database, uid)).toHaveLength(2)
      expect((await metaOf(e.db.database, uid))!.clocks.tags).toMatch(/-sql$/)
    })

    it('a table that lacks a column of its model fails set-up with TidesyncConfigError naming it', async () => {
      const e = env()
      await e.db.exec(brokenDdl)
      const ipc = await createIpc({ driver: 'memory' })
      e.defer(() => ipc.close())
      const make = (models: Record<string, ModelConfig<TestCtx>>) =>
        createTidesync<TestCtx>({ db: e.db.database.db, ipc, logger: noopLogger, models })
      const error = await make({ todos: todoModel, broken: { table: broken } })
        .setupCapture()
        .catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(TidesyncConfigError)
      expect((error as Error).message).toContain('note')
      expect((error as Error).message).toContain('capture_broken')
      await expect(make({ missing: { table: missing } }).setupCapture()).rejects.toThrow(/capture_missing/)
      // installTidesync fails at start-up the same way.
      const install = await e
        .start({ models: { broken: { table: broken } } })
        .catch((caught: unknown) => caught)
      expect(install).toBeInstanceOf(TidesyncConfigError)
      expect((install as Error).message).toMatch(/\bnote\b/)
      // Nothing was installed on the broken table.
      expect(
        await e.db.rows(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'capture_broken'::regclass`),
      ).toEqual([])
    })

    it('captureStatements, run by plain SQL on a database without capture, sets it up without setupCapture', async () => {
      const e = env()
      const fresh = await databaseWithoutCapture(e)
      expect(await captureObjects(fresh)).toEqual([])
      const statements = captureStatements({ models: { todos: todoModel } })
      expect(statements.length).toBeGreaterThan(5)
      for (const statement of statements) await fresh.exec(statement)
      // Twice: every statement is idempotent.
      await fresh.exec(`${statements.join(';\n')};`)

      const uid = uuidv7()
      await fresh.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'migrated')`)
      expect(await changesOf(fresh.database, uid)).toEqual([
        expect.objectContaining({ op: 'upsert', captured: true }),
      ])
      const ipc = await createIpc({ driver: 'memory' })
      e.defer(() => ipc.close())
      const log: string[] = []
      const t = loggedTidesync(fresh.database, ipc, log)
      const pulled = await createTidesync<TestCtx>({
        db: fresh.database.db,
        ipc,
        logger: noopLogger,
        models: { todos: todoModel },
      }).pull({ model: 'todos', checkpoint: '0' }, {})
      expect(pulled.upserts.map((u) => [u.record.uid, u.record.title])).toEqual([[uid, 'migrated']])
      expect(pulled.upserts[0]!.meta.rev).toBeGreaterThan(0)
      // What was printed is exactly what setupCapture installs: it finds nothing to do.
      await t.setupCapture()
      expect(log.filter((q) => DDL.test(q))).toEqual([])
    })

    it('several servers setting capture up at once on a fresh PostgreSQL database all succeed', async (ctx) => {
      const e = env()
      if (e.db.kind !== 'postgres') return ctx.skip()
      const fresh = await captureDatabase(await e.makeDatabase())
      e.defer(() => fresh.close())
      const ipc = await createIpc({ driver: 'memory' })
      e.defer(() => ipc.close())
      const pools = Array.from(
        { length: 4 },
        () => new pg.Pool({ connectionString: fresh.database.url, max: 2 }),
      )
      e.defer(() => Promise.all(pools.map((p) => p.end())))
      const results = await Promise.allSettled(
        pools.map((pool) =>
          createTidesync<TestCtx>({
            db: drizzle(pool) as unknown as TidesyncDb,
            ipc,
            logger: noopLogger,
            models: { todos: todoModel },
          }).setupCapture(),
        ),
      )
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual([
        'ok',
        'ok',
        'ok',
        'ok',
      ])
      const triggers = await fresh.rows<{ tgname: string }>(
        `SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tidesync_capture%' ORDER BY tgname`,
      )
      expect(triggers).toHaveLength(5)
      const uid = uuidv7()
      await fresh.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'after a race')`)
      expect(await changesOf(fresh.database, uid)).toHaveLength(1)
      // And again at once while they are in place: nothing to do, nothing fails.
      const again = await Promise.allSettled(
        pools.map((pool) =>
          createTidesync<TestCtx>({
            db: drizzle(pool) as unknown as TidesyncDb,
            ipc,
            logger: noopLogger,
            models: { todos: todoModel },
          }).setupCapture(),
        ),
      )
      expect(again.every((r) => r.status === 'fulfilled')).toBe(true)
    })
  })
}
