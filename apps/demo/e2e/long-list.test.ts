import { sql } from 'drizzle-orm'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seedNotes } from '../server/seed.js'
import { eventually, readNotes, waitForNote } from './helpers/app.js'
import { type AppWindow, launchBrowser, openWindow, screenshot } from './helpers/browser.js'
import { requireBrowser } from './helpers/require-browser.js'
import { startTestServer, type TestServer } from './helpers/server.js'

// Skipped when no browser is installed (the global setup says how to get one); required under CI=true.
const chromium = requireBrowser()

const NOTES = 600

describe.runIf(chromium)('a long list of notes', () => {
  let server: TestServer
  let browser: Browser
  let alice: AppWindow

  beforeAll(async () => {
    server = await startTestServer()
    await seedNotes(server.database.db, NOTES)
    browser = await launchBrowser(chromium!)
    alice = await openWindow(browser, server.url, 'Alice')
  })
  afterAll(async () => {
    await alice?.context.close().catch(() => {})
    await browser?.close()
    await server?.close()
  })

  const noteCount = async () => (await alice.page.getByTestId('note-count').textContent())?.trim()

  it('shows the newest notes first, with only the cards in view in the page', async () => {
    await eventually('the note count', noteCount, (count) => count === String(NOTES))
    const shown = await readNotes(alice.page)
    // The seed's note 1 is the newest.
    expect(shown[0]?.title).toBe('Sample note 1')
    expect(shown.length).toBeGreaterThan(0)
    expect(shown.length).toBeLessThan(40)
  })

  it('scrolls through every note, reading more as the end comes near', async () => {
    const scroller = alice.page.getByTestId('note-scroller')
    const box = (await scroller.boundingBox())!
    await alice.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
    let most = 0
    await eventually(
      'the oldest note, at the end of the list',
      async () => {
        await alice.page.mouse.wheel(0, 3000)
        const titles = (await readNotes(alice.page)).map((note) => note.title)
        most = Math.max(most, titles.length)
        return titles
      },
      (titles) => titles.includes(`Sample note ${NOTES}`),
      30_000,
    )
    // Still only the rows in view, at the end as at the top.
    expect(most).toBeLessThan(40)
    await eventually(
      'the list saying it holds every note',
      () => scroller.getAttribute('data-complete'),
      (complete) => complete === 'true',
    )
    await screenshot(alice.page, 'long-list-scrolled-to-the-end', { fullPage: false })
  })

  it('shows a note created far down the list at the top, ready to type in', async () => {
    await alice.page.getByTestId('new-note').click()
    // The list goes back to the top, where the new note is, and its title has the focus.
    const uid = await eventually(
      'the new note’s title focused',
      () =>
        alice.page.evaluate(() =>
          document.activeElement?.getAttribute('data-testid') === 'note-title'
            ? (document.activeElement.closest('[data-testid="note"]')?.getAttribute('data-uid') ?? null)
            : null,
        ),
      (focused) => focused !== null,
    )
    await alice.page.keyboard.type('Written at the top')
    await alice.page.keyboard.press('Tab')
    await waitForNote(alice.page, uid!, { title: 'Written at the top' })
    expect((await readNotes(alice.page))[0]?.uid).toBe(uid)
    await eventually('the note count', noteCount, (count) => count === String(NOTES + 1))
  })

  it('counts a note deleted elsewhere, far from the notes in view', async () => {
    await server.database.db.execute(sql`DELETE FROM notes WHERE title = ${`Sample note ${NOTES}`}`)
    await eventually('the note count', noteCount, (count) => count === String(NOTES))
  })
})
