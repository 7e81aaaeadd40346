import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { createTestDatabase, uniqueId } from '@tidesync/test-env'
import type { Logger as DrizzleLogger } from 'drizzle-orm'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { ensureSchema } from '../flush/batch-ledger.js'
import type { Executor } from '../flush/sql-util.js'
import type { AnyPgDatabase } from '../types.js'
import { DDL, RESET } from './schema.js'

/** One database (+ a second, for named connections) and a way to make IPC instances. */
export interface WriteBufferEnv {
  name: string
  db: AnyPgDatabase
  second: AnyPgDatabase
  /** Statements drizzle sent on `db` (counts reads of `get()`). */
  queries: { count: number }
  exec(text: string): Promise<void>
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  querySecond<T = Record<string, unknown>>(text: string): Promise<T[]>
  ipcDriver: 'memory' | 'cluster' | 'redis'
  /**
   * A new IPC instance. Memory: a new, empty store (as after a restart). Cluster (this process
   * is the primary): the primary's store, new and empty once every instance was closed. Redis:
   * the same store under `prefix`.
   */
  newIpc(prefix: string): Promise<Ipc>
  /** Blocks writes to wb_counters from other sessions until the returned release is called. */
  block(): Promise<() => Promise<void>>
  /**
   * PostgreSQL server only: a database on the same data whose sessions cancel any statement
   * running longer than `ms` (`SET statement_timeout`). Closed with the environment.
   */
  withStatementTimeout?(ms: number): AnyPgDatabase
  /** PostgreSQL server only: makes reads of wb_counters wait until the returned release is called. */
  blockReads?(): Promise<() => Promise<void>>
  reset(): Promise<void>
  close(): Promise<void>
}

export type IpcFactory = { driver: 'memory' } | { driver: 'cluster' } | { driver: 'redis'; url?: string }

function counter(): { queries: { count: number }; logger: DrizzleLogger } {
  const queries = { count: 0 }
  return { queries, logger: { logQuery: () => void queries.count++ } }
}

async function makeIpc(factory: IpcFactory, prefix: string): Promise<Ipc> {
  if (factory.driver === 'memory') return createIpc({ driver: 'memory' })
  if (factory.driver === 'cluster') return createIpc({ driver: 'cluster' })
  return createIpc({ driver: 'redis', url: factory.url, keyPrefix: `${prefix}:` })
}

export async function pgliteEnv(factory: IpcFactory = { driver: 'memory' }): Promise<WriteBufferEnv> {
  const client = await PGlite.create()
  const client2 = await PGlite.create()
  await client.exec(DDL)
  await client2.exec(DDL)
  const { queries, logger } = counter()
  const db = drizzlePglite(client, { logger })
  const second = drizzlePglite(client2)
  await ensureSchema(db as unknown as Executor)
  await ensureSchema(second as unknown as Executor)
  return {
    name: `pglite+${factory.driver}`,
    db,
    second,
    queries,
    exec: async (text) => void (await client.exec(text)),
    query: async (text, params) => (await client.query(text, params)).rows as never[],
    querySecond: async (text) => (await client2.query(text)).rows as never[],
    // PGlite has one session: an open transaction makes every other statement wait.
    block: async () => {
      let release!: () => void
      const gate = new Promise<void>((resolve) => {
        release = resolve
      })
      let started!: () => void
      const begun = new Promise<void>((resolve) => {
        started = resolve
      })
      const done = client.transaction(async () => {
        started()
        await gate
      })
      await begun
      return async () => {
        release()
        await done
      }
    },
    ipcDriver: factory.driver,
    newIpc: (prefix) => makeIpc(factory, prefix),
    reset: async () => {
      await client.exec(RESET)
      await client2.exec(RESET)
    },
    close: async () => {
      await client.close()
      await client2.close()
    },
  }
}

export async function postgresEnv(factory: IpcFactory = { driver: 'memory' }): Promise<WriteBufferEnv> {
  const first = await createTestDatabase('wb')
  const other = await createTestDatabase('wb2')
  const pool = new pg.Pool({ connectionString: first.url, max: 4 })
  const pool2 = new pg.Pool({ connectionString: other.url, max: 2 })
  // pool.end() resolves before its sockets are closed; the forced drop of the database at the
  // end then terminates them, and an idle client's error must not be an unhandled one.
  for (const p of [pool, pool2]) p.on('error', () => {})
  await pool.query(DDL)
  await pool2.query(DDL)
  const { queries, logger } = counter()
  const db = drizzlePg(pool, { logger })
  const second = drizzlePg(pool2)
  await ensureSchema(db as unknown as Executor)
  await ensureSchema(second as unknown as Executor)
  const timedPools: pg.Pool[] = []
  const lockTable = async (mode: string) => {
    const session = await pool.connect()
    await session.query('begin')
    await session.query(`lock table wb_counters in ${mode} mode`)
    return async () => {
      await session.query('commit')
      session.release()
    }
  }
  return {
    name: `postgres+${factory.driver}`,
    db,
    second,
    queries,
    exec: async (text) => void (await pool.query(text)),
    query: async (text, params) => (await pool.query(text, params)).rows,
    querySecond: async (text) => (await pool2.query(text)).rows,
    block: () => lockTable('exclusive'),
    withStatementTimeout: (ms) => {
      const timed = new pg.Pool({ connectionString: first.url, max: 2 })
      timed.on('error', () => {})
      timed.on('connect', (client) => {
        client.query(`set statement_timeout = ${Math.floor(ms)}`).catch(() => {})
      })
      timedPools.push(timed)
      return drizzlePg(timed)
    },
    blockReads: () => lockTable('access exclusive'),
    ipcDriver: factory.driver,
    newIpc: (prefix) => makeIpc(factory, prefix),
    reset: async () => {
      await pool.query(RESET)
      await pool2.query(RESET)
    },
    close: async () => {
      for (const timed of timedPools.splice(0)) await timed.end()
      await pool.end()
      await pool2.end()
      await first.drop()
      await other.drop()
    },
  }
}

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix = 'wb-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

export { uniqueId }
