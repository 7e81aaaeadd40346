import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { networkInterfaces } from 'node:os'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isLoopback, SQL_ROUTE } from '../server/sql-route.js'
import { notes } from '../shared/schema.js'
import { startTestServer, type TestServer } from './helpers/server.js'
import { runDemoSql } from './helpers/sql-cli.js'

// `POST /demo/sql` and the `sql` command, without a browser: on PGlite (the demo's default) and,
// when the server is there, on PostgreSQL (required under CI=true).
const hasPostgres = await requireServer('postgres')

interface Answer {
  status: number
  body: {
    rows?: Record<string, unknown>[]
    rowCount?: number
    error?: { code: string; message: string; sqlState?: string; detail?: string; hint?: string }
  }
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<Answer> {
  const response = await fetch(`${url}${SQL_ROUTE}`, { method: 'POST', headers, body })
  return { status: response.status, body: (await response.json()) as Answer['body'] }
}

const runSql = (url: string, sql: string) => post(url, JSON.stringify({ sql }))

const insertNote = (uid: string, title: string) =>
  `INSERT INTO notes (uid, title, body, author) VALUES ('${uid}', '${title}', 'written with SQL', 'psql') RETURNING uid, title`

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('isLoopback', () => {
  it('accepts this machine’s loopback addresses only', () => {
    for (const address of ['127.0.0.1', '127.0.0.53', '::1', '::ffff:127.0.0.1']) {
      expect(isLoopback(address), address).toBe(true)
    }
    for (const address of [undefined, '', '10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'fd00::2', '::']) {
      expect(isLoopback(address), String(address)).toBe(false)
    }
  })
})

const backends = [
  { name: 'PGlite', postgres: false },
  ...(hasPostgres ? [{ name: 'PostgreSQL', postgres: true }] : []),
]

describe.each(backends)('POST /demo/sql on $name', ({ postgres }) => {
  let server: TestServer
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined

  beforeAll(async () => {
    if (postgres) database = await createTestDatabase('tidesync_demo_sql')
    server = await startTestServer(database ? { databaseUrl: database.url } : { dataDir: 'memory' })
  })
  afterAll(async () => {
    await server?.close()
    await database?.drop()
  })

  const titleInDatabase = async (uid: string) =>
    (await server.database.db.select({ title: notes.title }).from(notes).where(eq(notes.uid, uid)))[0]?.title

  it('runs one statement from this machine and answers with its rows and row count', async () => {
    const uid = randomUUID()
    expect(await runSql(server.url, insertNote(uid, 'Inserted with SQL'))).toEqual({
      status: 200,
      body: { rows: [{ uid, title: 'Inserted with SQL' }], rowCount: 1 },
    })
    expect(
      await runSql(server.url, `UPDATE notes SET title = 'Updated with SQL' WHERE uid = '${uid}'`),
    ).toEqual({
      status: 200,
      body: { rows: [], rowCount: 1 },
    })
    expect(await titleInDatabase(uid)).toBe('Updated with SQL')
    expect(await runSql(server.url, `SELECT title, likes, author FROM notes WHERE uid = '${uid}'`)).toEqual({
      status: 200,
      body: { rows: [{ title: 'Updated with SQL', likes: 0, author: 'psql' }], rowCount: 1 },
    })
    expect(await runSql(server.url, `DELETE FROM notes WHERE uid = '${uid}'`)).toEqual({
      status: 200,
      body: { rows: [], rowCount: 1 },
    })
    expect(await titleInDatabase(uid)).toBeUndefined()
  })

  it('rejects an empty statement and malformed requests with typed errors, running nothing', async () => {
    for (const sql of ['', '   \n\t ']) {
      const answer = await runSql(server.url, sql)
      expect(answer.status).toBe(400)
      expect(answer.body.error?.code).toBe('EMPTY_STATEMENT')
      expect(answer.body.error?.message).toMatch(/the SQL statement is empty/)
    }

    const uid = randomUUID()
    const insert = JSON.stringify({ sql: insertNote(uid, 'Must not be written') })
    const refused: Array<[string, Promise<Answer>, number, string]> = [
      ['no sql field', post(server.url, JSON.stringify({ query: 'SELECT 1' })), 400, 'BAD_REQUEST'],
      ['sql not a string', post(server.url, JSON.stringify({ sql: 42 })), 400, 'BAD_REQUEST'],
      ['not JSON', post(server.url, 'SELECT 1'), 400, 'BAD_REQUEST'],
      [
        'no JSON content type',
        post(server.url, insert, { 'content-type': 'text/plain' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'from a web page',
        post(server.url, insert, { 'content-type': 'application/json', origin: 'http://example.com' }),
        403,
        'BROWSER_REQUEST',
      ],
    ]
    for (const [what, answer, status, code] of refused) {
      const { status: got, body } = await answer
      expect({ what, status: got, code: body.error?.code }).toEqual({ what, status, code })
    }
    const get = await fetch(`${server.url}${SQL_ROUTE}`)
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
    expect(await titleInDatabase(uid)).toBeUndefined()
  })

  it('answers a statement the database refuses with its own message, and keeps serving', async () => {
    const unknownColumn = await runSql(server.url, 'UPDATE notes SET colour = 1')
    expect(unknownColumn.status).toBe(400)
    expect(unknownColumn.body.error).toMatchObject({
      code: 'SQL_ERROR',
      sqlState: '42703',
      message: 'column "colour" of relation "notes" does not exist',
    })

    const twoStatements = await runSql(server.url, 'SELECT 1; SELECT 2')
    expect(twoStatements.body.error).toMatchObject({
      code: 'SQL_ERROR',
      sqlState: '42601',
      hint: 'send one statement at a time',
    })

    const uid = randomUUID()
    expect((await runSql(server.url, insertNote(uid, 'Once'))).status).toBe(200)
    const duplicate = await runSql(server.url, insertNote(uid, 'Twice'))
    expect(duplicate.body.error).toMatchObject({
      code: 'SQL_ERROR',
      sqlState: '23505',
      message: 'duplicate key value violates unique constraint "notes_pkey"',
      detail: `Key (uid)=(${uid}) already exists.`,
    })
    expect(await titleInDatabase(uid)).toBe('Once')

    // Still serving: SQL, the app and the socket.
    expect((await runSql(server.url, 'SELECT 1 AS one')).body).toEqual({ rows: [{ one: 1 }], rowCount: 1 })
    expect((await fetch(server.url)).status).toBe(200)
    expect(await (await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`)).text()).toMatch(
      /^0\{"sid"/,
    )
  })

  it('runs each statement in its own transaction: a BEGIN leaves none open', async () => {
    const uid = randomUUID()
    expect((await runSql(server.url, 'BEGIN')).status).toBe(200)
    expect((await runSql(server.url, insertNote(uid, 'Committed on its own'))).status).toBe(200)
    expect((await runSql(server.url, 'ROLLBACK')).status).toBe(200)
    expect(await titleInDatabase(uid)).toBe('Committed on its own')
  })
})

const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((address) => address && !address.internal && address.family === 'IPv4')?.address

describe('POST /demo/sql is local-only and can be turned off', () => {
  const servers: TestServer[] = []
  afterAll(async () => {
    for (const server of servers) await server.close()
  })

  it.runIf(otherAddress)('refuses a request that reaches the demo through another interface', async () => {
    const server = await startTestServer({ host: '0.0.0.0', dataDir: 'memory' })
    servers.push(server)
    const uid = randomUUID()
    const answer = await runSql(`http://${otherAddress}:${server.port}`, insertNote(uid, 'From afar'))
    expect(answer.status).toBe(403)
    expect(answer.body.error?.code).toBe('NOT_LOCAL')
    expect(answer.body.error?.message).toContain('only requests from this machine')
    expect(
      (await runSql(server.url, `SELECT count(*)::int AS n FROM notes WHERE uid = '${uid}'`)).body.rows,
    ).toEqual([{ n: 0 }])
  })

  it('sqlRoute: false leaves the route out (DEMO_SQL=0)', async () => {
    const server = await startTestServer({ sqlRoute: false, dataDir: 'memory' })
    servers.push(server)
    const uid = randomUUID()
    const response = await fetch(`${server.url}${SQL_ROUTE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: insertNote(uid, 'Route off') }),
    })
    expect(response.status).toBe(405)
    expect(await server.notesInDatabase()).toEqual([])

    const run = await runDemoSql(server.port, ['SELECT 1'], { via: 'direct' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("not as the demo's SQL route does")
    expect(run.stderr).toContain('DEMO_SQL=0')
  })
})

describe('the sql command (npm run demo:sql)', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ dataDir: 'memory' })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('prints the returned rows as a table and the row count', async () => {
    const uid = randomUUID()
    const insert = await runDemoSql(server.port, [insertNote(uid, 'From the command')], { via: 'direct' })
    expect(insert).toMatchObject({ code: 0, stderr: '' })
    const lines = insert.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ uid +\| title$/)
    expect(lines[1]).toMatch(/^-+\+-+$/)
    expect(lines[2]).toBe(` ${uid} | From the command`)
    expect(lines[3]).toBe('(1 row)')

    const update = await runDemoSql(
      server.port,
      [`UPDATE notes SET likes = likes + 2 WHERE uid = '${uid}'`, '--json'],
      {
        via: 'direct',
      },
    )
    expect(update.code).toBe(0)
    expect(JSON.parse(update.stdout)).toEqual({ rows: [], rowCount: 1 })
  })

  it('exits 1 with the database’s message when the statement is refused', async () => {
    const run = await runDemoSql(server.port, ['UPDATE notes SET colour = 1'], { via: 'direct' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain(
      'ERROR:  column "colour" of relation "notes" does not exist (SQLSTATE 42703)',
    )
    expect(run.stdout).toBe('')
  })

  it('exits 2 with the usage when the statement is empty', async () => {
    const run = await runDemoSql(server.port, ['  '], { via: 'direct' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('No SQL statement given.')
    expect(run.stderr).toContain('Usage: npm run demo:sql -- "<one SQL statement>"')
  })

  it('says to start the demo first when none is running', async () => {
    const run = await runDemoSql(await closedPort(), ['SELECT 1'], { via: 'direct' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('start the demo first: npm run demo')
  })
})
