/**
 * `POST /demo/sql`: one plain SQL statement on the demo's database, from a terminal on this
 * machine (`npm run demo:sql`). It shows what tidesync does with writes made by other programs;
 * it is a demo tool, never a route for a production server (`sqlRoute: false`, `DEMO_SQL=0`
 * turn it off).
 *
 * Request: `Content-Type: application/json`, body `{ "sql": "UPDATE notes SET ..." }`.
 * Answer: 200 `{ rows, rowCount }`, or `{ error: { code, message, ... } }` with the status below.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '@tidesync/server'
import type { DemoDatabase } from './database.js'

export const SQL_ROUTE = '/demo/sql'

/** The largest body accepted, in bytes. */
export const MAX_SQL_BODY = 1_000_000

/** Why a request got no result: `code`, and the status it is answered with. */
export const SQL_ROUTE_ERRORS = {
  /** The request did not come from this machine's loopback interface. */
  NOT_LOCAL: 403,
  /** The request came from a web page (it carries an `Origin`): only terminals may send SQL. */
  BROWSER_REQUEST: 403,
  /** Not a POST. */
  METHOD_NOT_ALLOWED: 405,
  /** Not JSON, or not `{ "sql": "..." }`. */
  BAD_REQUEST: 400,
  /** The body is larger than `MAX_SQL_BODY`. */
  TOO_LARGE: 413,
  /** `sql` is empty or only white space. */
  EMPTY_STATEMENT: 400,
  /** The database refused the statement; `message` is its own, `sqlState` its code. */
  SQL_ERROR: 400,
  /** The database could not be reached or failed otherwise. */
  DATABASE_FAILED: 500,
} as const

export type SqlRouteErrorCode = keyof typeof SQL_ROUTE_ERRORS

/** The error answer's body. */
export interface SqlRouteError {
  code: SqlRouteErrorCode
  message: string
  /** The database's SQLSTATE (`SQL_ERROR`), e.g. `42703` for an unknown column. */
  sqlState?: string
  detail?: string
  hint?: string
}

/** Whether `address` (a socket's remote address) is this machine's loopback interface. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4.startsWith('127.') || address === '::1'
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * Wraps the demo's HTTP handler: `POST /demo/sql` runs the statement with `database.runSql`
 * (plain SQL, its own transaction); every other request goes to `next`.
 */
export function withSqlRoute(database: Pick<DemoDatabase, 'runSql'>, log: Logger, next: Handler): Handler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== SQL_ROUTE) {
      next(req, res)
      return
    }
    handle(database, log, req, res).catch((error) => {
      log.warn('the SQL route failed', error)
      if (!res.headersSent) fail(res, 'DATABASE_FAILED', String((error as Error)?.message ?? error))
      else res.destroy()
    })
  }
}

async function handle(
  database: Pick<DemoDatabase, 'runSql'>,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (!isLoopback(req.socket.remoteAddress)) {
    // Checked first, and the body is never read: nothing from another machine reaches the database.
    req.resume()
    fail(
      res,
      'NOT_LOCAL',
      `${SQL_ROUTE} answers only requests from this machine (127.0.0.1 or ::1), not from ${req.socket.remoteAddress}`,
    )
    return
  }
  if (req.headers.origin !== undefined) {
    // A page in a browser on this machine could post here (any site, or a DNS-rebound name);
    // browsers always send Origin with a POST, terminals do not.
    req.resume()
    fail(
      res,
      'BROWSER_REQUEST',
      `${SQL_ROUTE} takes requests from a terminal (npm run demo:sql), not from web pages`,
    )
    return
  }
  if (req.method !== 'POST') {
    req.resume()
    res.setHeader('allow', 'POST')
    fail(res, 'METHOD_NOT_ALLOWED', `${SQL_ROUTE} takes a POST with { "sql": "..." }`)
    return
  }
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    req.resume()
    fail(res, 'BAD_REQUEST', 'send Content-Type: application/json and a body { "sql": "..." }')
    return
  }
  const body = await readBody(req)
  if (body === null) {
    fail(res, 'TOO_LARGE', `the body is larger than ${MAX_SQL_BODY} bytes`)
    return
  }
  let statement: unknown
  try {
    statement = (JSON.parse(body) as { sql?: unknown } | null)?.sql
  } catch {
    fail(res, 'BAD_REQUEST', 'the body is not JSON: send { "sql": "..." }')
    return
  }
  if (typeof statement !== 'string') {
    fail(res, 'BAD_REQUEST', 'the body must be { "sql": "..." } with the statement as a string')
    return
  }
  if (statement.trim() === '') {
    fail(
      res,
      'EMPTY_STATEMENT',
      'the SQL statement is empty: send one, e.g. { "sql": "SELECT uid, title FROM notes" }',
    )
    return
  }

  log.info(`SQL from a terminal: ${statement}`)
  let result: Awaited<ReturnType<DemoDatabase['runSql']>>
  try {
    result = await database.runSql(statement)
  } catch (error) {
    const { code, message, detail, hint } = error as {
      code?: unknown
      message?: string
      detail?: string
      hint?: string
    }
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
      fail(res, 'SQL_ERROR', message ?? 'the database refused the statement', {
        sqlState: code,
        detail,
        hint: hint ?? (message?.includes('multiple commands') ? 'send one statement at a time' : undefined),
      })
    } else {
      log.warn('the SQL route could not run a statement', error)
      fail(res, 'DATABASE_FAILED', `the database failed: ${message ?? String(error)}`)
    }
    return
  }
  send(res, 200, { rows: result.rows, rowCount: result.rowCount })
}

/** The body as text, or null when it is larger than `MAX_SQL_BODY` (the rest is read and dropped). */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_SQL_BODY) chunks.push(chunk)
    })
    req.on('end', () => resolve(size > MAX_SQL_BODY ? null : Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function fail(
  res: ServerResponse,
  code: SqlRouteErrorCode,
  message: string,
  extra: Omit<SqlRouteError, 'code' | 'message'> = {},
): void {
  // Fields that are undefined are left out by JSON.stringify.
  send(res, SQL_ROUTE_ERRORS[code], { error: { code, message, ...extra } })
}

/** JSON with the values JSON has no form for: bigint as a string, bytea as `\x` hex (as psql shows them). */
function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, function (this: Record<string, unknown>, key, value) {
    const raw = this[key]
    if (typeof raw === 'bigint') return raw.toString()
    if (raw instanceof Uint8Array) return `\\x${Buffer.from(raw).toString('hex')}`
    return value
  })
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(text)
}
