import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createNote,
  deleteNote,
  editField,
  eventually,
  readNotes,
  settledPendingCount,
  waitForNote,
  waitOffline,
  waitSynced,
} from './helpers/app.js'
import { type AppWindow, launchBrowser, openWindow, screenshot } from './helpers/browser.js'
import { requireBrowser } from './helpers/require-browser.js'
import { startTestServer, type TestServer } from './helpers/server.js'

// Skipped when no browser is installed (the global setup says how to get one); required under CI=true.
const chromium = requireBrowser()

describe.runIf(chromium)('two windows, one of them offline', () => {
  let server: TestServer
  let browser: Browser
  const windows: AppWindow[] = []

  beforeAll(async () => {
    server = await startTestServer()
    browser = await launchBrowser(chromium!)
  })
  afterAll(async () => {
    for (const window of windows) await window.context.close().catch(() => {})
    await browser?.close()
    await server?.close()
  })

  it('merges what both edited, and the database agrees', async () => {
    const alice = await openWindow(browser, server.url, 'Alice')
    const bob = await openWindow(browser, server.url, 'Bob')
    windows.push(alice, bob)
    await waitSynced(alice.page)
    await waitSynced(bob.page)

    const trip = await createNote(alice.page, 'Trip plan', 'Pack bags')
    const old = await createNote(alice.page, 'Old idea', 'Nobody needs this')
    await waitForNote(bob.page, trip, { title: 'Trip plan', body: 'Pack bags' })
    await waitForNote(bob.page, old, { title: 'Old idea' })

    // Alice loses the network: Chromium drops the websocket and the app notices.
    await alice.context.setOffline(true)
    await waitOffline(alice.page)
    await eventually(
      'an explanation in plain words',
      async () => (await alice.page.getByTestId('error-banner').textContent()) ?? '',
      (text) => text.includes("Can't reach the server. Your changes are kept on this device"),
    )

    // Both edit the same note, each a different field; Alice also creates and deletes offline.
    await editField(alice.page, trip, 'title', 'Trip plan: Lisbon')
    await editField(bob.page, trip, 'body', 'Pack bags, book the train')
    const offline = await createNote(alice.page, 'Written offline', 'On the plane')
    await deleteNote(alice.page, old)
    expect(await settledPendingCount(alice.page)).toBeGreaterThanOrEqual(4)
    await waitSynced(bob.page)
    expect((await readNotes(bob.page)).map((n) => n.uid)).not.toContain(offline)
    await screenshot(alice.page, 'a-alice-offline')

    // Back online: both windows converge on the merged state.
    await alice.context.setOffline(false)
    await waitSynced(alice.page)
    const merged = { title: 'Trip plan: Lisbon', body: 'Pack bags, book the train' }
    await waitForNote(alice.page, trip, merged)
    await waitForNote(bob.page, trip, merged)
    await waitForNote(bob.page, offline, { title: 'Written offline', body: 'On the plane' })
    const shown = await eventually(
      'both windows show the same notes',
      async () => [await readNotes(alice.page), await readNotes(bob.page)] as const,
      ([a, b]) => JSON.stringify(a) === JSON.stringify(b),
    )
    expect(shown[0].map((n) => n.uid).sort()).toEqual([trip, offline].sort())

    // The database holds exactly what both windows show.
    const rows = await server.notesInDatabase()
    expect(rows).toEqual(
      [...shown[0]]
        .sort((a, b) => a.uid.localeCompare(b.uid))
        .map(({ uid, title, body, likes }) => ({
          uid,
          title,
          body,
          likes,
        })),
    )
    expect(await server.isDeletedInDatabase(old)).toBe(true)

    // Everyone's actions reached the activity feed, through buffered inserts.
    await eventually(
      'activity in both windows',
      () => bob.page.getByTestId('activity').allTextContents(),
      (lines) =>
        lines.some((l) => l.includes('Alice deleted')) && lines.some((l) => l.includes('Bob edited')),
    )
    for (const window of [alice, bob]) {
      await eventually(
        'no error left',
        () => window.page.getByTestId('error-banner').count(),
        (n) => n === 0,
      )
    }
    await screenshot(alice.page, 'a-alice-merged')
    await screenshot(bob.page, 'a-bob-merged')
    expect(alice.problems).toEqual([])
    expect(bob.problems).toEqual([])
  })
})
