import type { Json } from '@tidesync/ipc'
import { type SQL, sql } from 'drizzle-orm'
import type { AnyPgDatabase } from '../types.js'

/** A drizzle database or transaction: what the flush code runs statements on. */
export type Executor = Pick<AnyPgDatabase, 'execute'> & {
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>
}

/** Counts statements sent, for reports and benchmarks. */
export interface StatementCounter {
  statements: number
}

/** Runs one statement and returns its rows (node-postgres and PGlite both answer `{ rows }`). */
export async function run<T = Record<string, unknown>>(
  db: Executor,
  query: SQL,
  counter?: StatementCounter,
): Promise<T[]> {
  if (counter) counter.statements++
  const result = (await db.execute(query)) as unknown as { rows?: T[] } | T[]
  if (Array.isArray(result)) return result
  return result.rows ?? []
}

/** The SQLSTATE of a database error (drizzle wraps the driver's error in `cause`). */
export function sqlState(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * True for errors caused by the data of some row (class 22 data exception, class 23 integrity
 * constraint violation): isolating the row helps. Anything else (connection lost, deadlock,
 * missing table) fails the whole flush, which is retried.
 */
export function isDataError(error: unknown): boolean {
  const state = sqlState(error)
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'))
}

/** A typed record source over one JSON parameter: `jsonb_to_recordset($1::jsonb) AS v(c0 type, ...)`. */
export function recordset(rows: Record<string, Json>[], columns: { name: string; type: string }[]): SQL {
  const definition = sql.join(
    columns.map((c) => sql`${sql.identifier(c.name)} ${sql.raw(c.type)}`),
    sql`, `,
  )
  return sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(${definition})`
}

/** The message of an error and of its cause (drizzle's message is only the failed query). */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const cause = (error as { cause?: unknown })?.cause
  if (cause instanceof Error && cause.message && !message.includes(cause.message)) {
    return `${cause.message} (${message.split('\n')[0]?.slice(0, 200)})`
  }
  return message
}
