import { randomUUID } from 'node:crypto'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectionState,
  createNote,
  eventually,
  readNotes,
  type ShownNote,
  waitSynced,
} from './helpers/app.js'
import { type AppWindow, launchBrowser, openWindow, screenshot } from './helpers/browser.js'
import { requireBrowser } from './helpers/require-browser.js'
import { startTestServer, type TestServer } from './helpers/server.js'
import { runDemoSql } from './helpers/sql-cli.js'

// Skipped when no browser is installed (the global setup says how to get one); required under CI=true.
const chromium = requireBrowser()

/** "Within a few seconds": how long a change made with SQL may take to show in the open page. */
const LIVE_MS = 5_000

// Writes made by another program: `npm run demo:sql -- "<SQL>"` in a second terminal, as the
// README shows, runs plain SQL on the demo's database (PGlite), not through tidesync's services.
// The open page must show each change without a reload: tidesync's change capture records
// every committed write to a synced table and pushes it live.
describe.runIf(chromium)('changes made with plain SQL from a terminal', () => {
  let server: TestServer
  let browser: Browser
  let alice: AppWindow
  /** A note created in the browser, then changed with SQL. */
  let created: string
  /** A note inserted with SQL. */
  const inserted = randomUUID()

  beforeAll(async () => {
    server = await startTestServer()
    browser = await launchBrowser(chromium!)
    alice = await openWindow(browser, server.url, 'Alice')
    await waitSynced(alice.page)
    created = await createNote(alice.page, 'Written in the browser', 'Before any SQL')
    await waitSynced(alice.page)
    await eventually(
      'the browser’s note in the database',
      () => server.notesInDatabase(),
      (rows) => rows.some((row) => row.uid === created && row.title === 'Written in the browser'),
    )
  })
  afterAll(async () => {
    await alice?.context.close().catch(() => {})
    await browser?.close()
    await server?.close()
  })

  const shown = async (uid: string): Promise<ShownNote | undefined> =>
    (await readNotes(alice.page)).find((note) => note.uid === uid)

  async function sql(statement: string) {
    const run = await runDemoSql(server.port, [statement])
    expect(run.code, `npm run demo:sql failed:\n${run.stdout}\n${run.stderr}`).toBe(0)
    return run
  }

  it('an UPDATE shows in the open page without a reload', async () => {
    const run = await sql(`UPDATE notes SET title = 'Changed with SQL' WHERE uid = '${created}'`)
    expect(run.stdout).toContain('(1 row)')
    expect((await server.notesInDatabase()).find((row) => row.uid === created)?.title).toBe(
      'Changed with SQL',
    )

    await eventually(
      'the page showing the title set with SQL',
      () => shown(created),
      (note) => note?.title === 'Changed with SQL' && note.body === 'Before any SQL',
      LIVE_MS,
    )
  })

  it('an INSERT shows in the open page without a reload', async () => {
    const run = await sql(
      `INSERT INTO notes (uid, title, body, likes, author, created_at) VALUES ('${inserted}', 'Inserted with SQL', 'From a terminal', 3, 'psql', now()) RETURNING uid, title`,
    )
    expect(run.stdout).toContain(` ${inserted} | Inserted with SQL`)
    expect(run.stdout).toContain('(1 row)')
    expect((await server.notesInDatabase()).some((row) => row.uid === inserted)).toBe(true)

    await eventually(
      'the page showing the note inserted with SQL',
      () => shown(inserted),
      (note) => note?.title === 'Inserted with SQL' && note.body === 'From a terminal' && note.likes === 3,
      LIVE_MS,
    )
    await screenshot(alice.page, 'sql-from-terminal')
  })

  it('a DELETE removes the notes from the open page without a reload', async () => {
    // The browser's note is on the page before the DELETE, whatever the two tests above found.
    expect(await shown(created)).toBeDefined()
    const run = await sql(`DELETE FROM notes WHERE uid IN ('${created}', '${inserted}')`)
    expect(run.stdout).toContain('(2 rows)')
    const left = (await server.notesInDatabase()).map((row) => row.uid)
    expect(left).not.toContain(created)
    expect(left).not.toContain(inserted)

    await eventually(
      'the page without the notes deleted with SQL',
      async () => (await readNotes(alice.page)).map((note) => note.uid),
      (uids) => !uids.includes(created) && !uids.includes(inserted),
      LIVE_MS,
    )
  })

  it('a bad statement exits non-zero with the database’s message, and the demo keeps serving', async () => {
    const run = await runDemoSql(server.port, ["UPDATE notes SET colour = 'blue'"])
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain(
      'ERROR:  column "colour" of relation "notes" does not exist (SQLSTATE 42703)',
    )
    expect(run.stdout).not.toMatch(/\(\d+ rows?\)/)

    // The page is still online and still syncs; the command still works.
    expect(await connectionState(alice.page)).toMatch(/^Online/)
    const uid = await createNote(alice.page, 'After the bad statement', 'Still syncing')
    await waitSynced(alice.page)
    await eventually(
      'the new note in the database',
      () => server.notesInDatabase(),
      (rows) => rows.some((row) => row.uid === uid && row.title === 'After the bad statement'),
    )
    const select = await sql(`SELECT title FROM notes WHERE uid = '${uid}'`)
    expect(select.stdout).toContain(' After the bad statement')
    expect(alice.problems).toEqual([])
  })
})
