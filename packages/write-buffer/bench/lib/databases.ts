import { PGlite } from '@electric-sql/pglite'
import { createTestDatabase, probePostgres } from '@tidesync/test-env'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

/** One raw statement on the driver: text, parameters, driver options (PGlite's `blob`). */
export type RawQuery = (text: string, params?: unknown[], options?: { blob?: Blob }) => Promise<unknown>

/** One transaction on one driver connection, for the bulk-insert baselines (no drizzle, no buffer). */
export interface RawTransaction {
  query: RawQuery
  /** `COPY ... FROM STDIN` with the data written in pieces (PostgreSQL server, pg-copy-streams). */
  copyFromStdin?: (statement: string, pieces: string[]) => Promise<void>
}

export interface BenchDatabase {
  name: 'postgres' | 'pglite'
  // biome-ignore lint/suspicious/noExplicitAny: either drizzle driver
  db: any
  /** Statements drizzle sent (begin/commit included). */
  statements: { count: number }
  exec(text: string): Promise<void>
  scalar(text: string): Promise<number>
  /** Runs `fn` in one transaction on one raw connection (begin and commit included). */
  transaction(fn: (tx: RawTransaction) => Promise<void>): Promise<void>
  close(): Promise<void>
}

function statementCounter() {
  const statements = { count: 0 }
  return { statements, logger: { logQuery: () => void statements.count++ } }
}

export async function openPglite(ddl: string): Promise<BenchDatabase> {
  const client = await PGlite.create()
  const { statements, logger } = statementCounter()
  await client.exec(ddl)
  return {
    name: 'pglite',
    db: drizzlePglite(client, { logger }),
    statements,
    exec: async (text) => void (await client.exec(text)),
    scalar: async (text) => Number(Object.values((await client.query(text)).rows[0] as object)[0]),
    transaction: async (fn) => {
      await client.transaction((tx) =>
        fn({ query: (text, params, options) => tx.query(text, params, options) }),
      )
    },
    close: () => client.close(),
  }
}

/** The PostgreSQL server (a throwaway database on DATABASE_URL), or null when unreachable. */
export async function openPostgres(ddl: string): Promise<BenchDatabase | null> {
  const reason = await probePostgres()
  if (reason) {
    console.warn(`skipping the PostgreSQL cases: ${reason}`)
    return null
  }
  const database = await createTestDatabase('wbbench')
  const pool = new pg.Pool({ connectionString: database.url, max: 16 })
  // pool.end() resolves before its sockets are closed: the forced drop then terminates them.
  pool.on('error', () => {})
  const { statements, logger } = statementCounter()
  await pool.query(ddl)
  return {
    name: 'postgres',
    db: drizzlePg(pool, { logger }),
    statements,
    exec: async (text) => void (await pool.query(text)),
    scalar: async (text) => Number(Object.values((await pool.query(text)).rows[0] as object)[0]),
    transaction: async (fn) => {
      const client = await pool.connect()
      try {
        await client.query('begin')
        await fn({
          query: (text, params) => client.query(text, params),
          copyFromStdin: (statement, pieces) => copyPieces(client, statement, pieces),
        })
        await client.query('commit')
      } catch (error) {
        await client.query('rollback').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    close: async () => {
      await pool.end()
      await database.drop()
    },
  }
}

/** Writes the pieces into one `COPY ... FROM STDIN`, honouring back-pressure; resolves once applied. */
function copyPieces(client: pg.PoolClient, statement: string, pieces: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(`${statement} from stdin`))
    stream.on('error', reject)
    stream.on('finish', resolve)
    let next = 0
    const pump = () => {
      while (next < pieces.length) if (!stream.write(pieces[next++])) return void stream.once('drain', pump)
      stream.end()
    }
    pump()
  })
}
