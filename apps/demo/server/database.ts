import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { ensureSchema, type TidesyncDb } from '@tidesync/server'
import { sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'

/**
 * The demo's tables, as SQL (the drizzle tables in shared/schema.ts describe the same columns).
 * Idempotent, run at every start-up. A real app would generate this with drizzle-kit.
 */
const DEMO_DDL = [
  `CREATE TABLE IF NOT EXISTS notes (
    uid uuid PRIMARY KEY,
    title text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    likes integer NOT NULL DEFAULT 0,
    author text NOT NULL DEFAULT '',
    created_at timestamp(3) with time zone NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS activity (
    id uuid PRIMARY KEY,
    at timestamp(3) with time zone NOT NULL,
    who text NOT NULL,
    action text NOT NULL,
    note_uid uuid NOT NULL,
    note_title text NOT NULL DEFAULT '')`,
  'CREATE INDEX IF NOT EXISTS activity_at ON activity (at DESC)',
]

/** What one plain SQL statement answered. */
export interface SqlResult {
  /** The rows it returned (a SELECT, or an INSERT/UPDATE/DELETE with RETURNING), by column name. */
  rows: Record<string, unknown>[]
  /** How many rows it inserted, updated or deleted; for a SELECT, how many it returned. */
  rowCount: number
}

export interface DemoDatabase {
  kind: 'pglite' | 'postgres'
  db: TidesyncDb
  /** Where it lives, for the start-up message (the password of a URL is hidden). */
  location: string
  /**
   * Runs one SQL statement as it is, in a transaction of its own, straight on the database: the
   * way another program (psql, a cron job, a migration) writes, not through tidesync's services.
   * Behind the demo's `POST /demo/sql`. A string with several statements is refused by the
   * database; a `BEGIN`, `COMMIT` or `ROLLBACK` in it cannot leave a transaction open.
   * Database errors are thrown as they are (with their SQLSTATE `code`).
   */
  runSql(statement: string): Promise<SqlResult>
  close(): Promise<void>
}

export interface OpenDatabaseOptions {
  /** A PostgreSQL URL; without it, PGlite stores the database in `dataDir`. */
  databaseUrl?: string
  /** PGlite's folder, or `memory` for a throwaway in-memory database. */
  dataDir: string
}

/** Opens PostgreSQL (`databaseUrl`) or PGlite and creates the demo's and tidesync's tables. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<DemoDatabase> {
  let database: DemoDatabase
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 })
    const url = new URL(options.databaseUrl)
    if (url.password) url.password = '***'
    database = {
      kind: 'postgres',
      db: drizzleNodePg(pool) as unknown as TidesyncDb,
      location: url.toString(),
      runSql: async (statement) => {
        const client = await pool.connect()
        let broken: Error | undefined
        try {
          await client.query('BEGIN')
          // The extended protocol, as PGlite's `query` uses: one statement per string.
          const result = await client.query({ text: statement, queryMode: 'extended' } as pg.QueryConfig)
          await client.query('COMMIT')
          return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length }
        } catch (error) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => {
            broken = rollbackError
          })
          throw error
        } finally {
          client.release(broken)
        }
      },
      close: () => pool.end(),
    }
  } else {
    const inMemory = options.dataDir === 'memory'
    if (!inMemory) mkdirSync(options.dataDir, { recursive: true })
    const client = inMemory ? new PGlite() : new PGlite(options.dataDir)
    database = {
      kind: 'pglite',
      db: drizzlePglite(client) as unknown as TidesyncDb,
      location: inMemory ? 'PGlite in memory' : `PGlite in ${options.dataDir}`,
      // PGlite has one connection, shared with the demo: the transaction keeps a stray `BEGIN`
      // from leaving it inside a transaction that every later write would join.
      runSql: (statement) =>
        client.transaction(async (tx) => {
          const result = await tx.query<Record<string, unknown>>(statement)
          return { rows: result.rows, rowCount: result.affectedRows || result.rows.length }
        }),
      close: () => client.close(),
    }
  }
  try {
    await database.db.transaction(async (tx) => {
      // Several demo servers may start at once on one PostgreSQL: one creates, the others wait.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('tidesync_demo_schema'))`)
      for (const statement of DEMO_DDL) await tx.execute(sql.raw(statement))
    })
    await ensureSchema(database.db)
  } catch (error) {
    await database.close().catch(() => {})
    throw error
  }
  return database
}
