/**
 * `npm run demo:sql -- "<SQL>"` (at the repository root; `npm run sql -- "<SQL>"` in apps/demo):
 * runs one SQL statement on the running demo's database through the demo's local-only
 * `POST /demo/sql` (server/sql-route.ts), as any other program writing to the database would,
 * and prints the rows it returned and its row count.
 *
 * Finds the demo where `npm run demo` listens: `PORT` (default 3000) and `HOST` (default
 * 127.0.0.1), read the same way (server/env.ts). `--json` prints the answer as JSON. Without a
 * statement in the arguments it reads one from standard input (`echo "SELECT 1" | npm run demo:sql`).
 *
 * Exit status: 0 done; 1 the database refused the statement, or no demo answers; 2 usage.
 */
import type { SqlResult } from './database.js'
import { connectHost, DEFAULT_PORT, parsePort } from './env.js'
import { SQL_ROUTE, type SqlRouteError } from './sql-route.js'

const USAGE = `Usage: npm run demo:sql -- "<one SQL statement>" [--json]

Runs the statement on the running demo's database (npm run demo) as plain SQL, as any other
program writing to the database would; changes to notes appear in the open browser windows.

  npm run demo:sql -- "SELECT uid, title, likes FROM notes"
  npm run demo:sql -- "UPDATE notes SET title = 'from SQL' WHERE uid = '<uid>'"
  npm run demo:sql -- "INSERT INTO notes (uid, title, body, author) VALUES (gen_random_uuid(), 'Hello', 'written with SQL', 'psql')"

The demo is found at PORT (default ${DEFAULT_PORT}) and HOST (default 127.0.0.1), as npm run demo reads them.`

type Answer = Partial<SqlResult> & { error?: SqlRouteError }

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

/** A value as one table cell: NULL empty (as psql shows it), objects as JSON, newlines escaped. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return ''
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value)
  return text.replace(/\r?\n/g, '\\n')
}

/** Rows as psql prints them: a header, a rule, one line per row. */
function formatRows(rows: Record<string, unknown>[]): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))]
  const lines = rows.map((row) => columns.map((column) => cell(row[column])))
  const widths = columns.map((column, i) => Math.max(column.length, ...lines.map((line) => line[i]!.length)))
  const join = (cells: string[]) =>
    cells
      .map((text, i) => ` ${text.padEnd(widths[i]!)} `)
      .join('|')
      .trimEnd()
  return [join(columns), widths.map((width) => '-'.repeat(width + 2)).join('+'), ...lines.map(join)].join(
    '\n',
  )
}

function printError(error: SqlRouteError): void {
  if (error.code === 'SQL_ERROR') {
    console.error(`ERROR:  ${error.message}${error.sqlState ? ` (SQLSTATE ${error.sqlState})` : ''}`)
  } else {
    console.error(`The demo refused the request: ${error.message} (${error.code})`)
  }
  if (error.detail) console.error(`DETAIL:  ${error.detail}`)
  if (error.hint) console.error(`HINT:  ${error.hint}`)
}

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  if (args.includes('-h') || args.includes('--help')) {
    console.log(USAGE)
    return 0
  }
  const json = args.includes('--json')
  let statement = args.filter((arg) => arg !== '--json').join(' ')
  if (statement.trim() === '' && !process.stdin.isTTY) statement = await readStdin()
  if (statement.trim() === '') {
    console.error(`No SQL statement given.\n\n${USAGE}`)
    return 2
  }

  let port: number
  try {
    port = parsePort(process.env.PORT)
  } catch (error) {
    console.error((error as Error).message)
    return 2
  }
  if (port === 0) {
    console.error(
      'PORT=0 makes the demo pick a free port: give the port it printed instead, e.g. PORT=41234 npm run demo:sql -- "..."',
    )
    return 2
  }
  const origin = `http://${connectHost(process.env.HOST)}:${port}`

  let response: Response
  try {
    response = await fetch(`${origin}${SQL_ROUTE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: statement }),
    })
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    console.error(
      `No demo answers at ${origin} (${cause?.code ?? cause?.message ?? (error as Error).message}): start the demo first: npm run demo`,
    )
    if (port === DEFAULT_PORT)
      console.error('(If it runs on another port, give it: PORT=3001 npm run demo:sql -- "...")')
    return 1
  }

  let answer: Answer | undefined
  try {
    answer = JSON.parse(await response.text()) as Answer
  } catch {
    answer = undefined
  }
  if (answer?.error) {
    printError(answer.error)
    return 1
  }
  if (!answer || !Array.isArray(answer.rows) || typeof answer.rowCount !== 'number') {
    console.error(
      `${origin} answered ${response.status} ${response.statusText}, not as the demo's SQL route does: is the demo running there with DEMO_SQL=0 (the route turned off), or is another program on port ${port}?`,
    )
    return 1
  }

  if (json) {
    console.log(JSON.stringify(answer, null, 2))
  } else {
    if (answer.rows.length > 0) console.log(formatRows(answer.rows))
    console.log(`(${answer.rowCount} ${answer.rowCount === 1 ? 'row' : 'rows'})`)
  }
  return 0
}

process.exitCode = await main()
