import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectionState,
  createNote,
  eventually,
  like,
  settledPendingCount,
  toggleWorkOffline,
  waitForNote,
  waitOffline,
  waitSynced,
} from './helpers/app.js'
import { type AppWindow, launchBrowser, openWindow, screenshot } from './helpers/browser.js'
import { requireBrowser } from './helpers/require-browser.js'
import { startTestServer, type TestServer } from './helpers/server.js'

// Skipped when no browser is installed (the global setup says how to get one); required under CI=true.
const chromium = requireBrowser()

describe.runIf(chromium)('a like counter through the write buffer', () => {
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

  async function likesInDatabase(uid: string): Promise<number | undefined> {
    return (await server.notesInDatabase()).find((row) => row.uid === uid)?.likes
  }

  it('adds up likes given offline and online in two windows', async () => {
    const alice = await openWindow(browser, server.url, 'Alice')
    const bob = await openWindow(browser, server.url, 'Bob')
    windows.push(alice, bob)
    const uid = await createNote(alice.page, 'Lunch spot', 'The noodle bar on the corner')
    await waitForNote(bob.page, uid, { title: 'Lunch spot' })

    // Round 1: Alice works offline with the app's switch; Bob stays online.
    await toggleWorkOffline(alice.page)
    await waitOffline(alice.page)
    expect(await connectionState(alice.page)).toBe('Offline (switched off)')
    await like(alice.page, uid, 3)
    await like(bob.page, uid, 2)
    await waitForNote(alice.page, uid, { likes: 3 })
    await waitForNote(bob.page, uid, { likes: 2 })
    expect(await settledPendingCount(alice.page)).toBeGreaterThanOrEqual(1)
    await screenshot(alice.page, 'b-alice-switched-offline')
    await toggleWorkOffline(alice.page)
    await waitSynced(alice.page)
    await waitForNote(alice.page, uid, { likes: 5 })
    await waitForNote(bob.page, uid, { likes: 5 })
    await eventually(
      '5 likes in the database',
      () => likesInDatabase(uid),
      (n) => n === 5,
    )

    // Round 2: Bob loses the network; both keep liking.
    await bob.context.setOffline(true)
    await waitOffline(bob.page)
    await like(bob.page, uid, 4)
    await like(alice.page, uid, 1)
    await waitForNote(bob.page, uid, { likes: 9 })
    await waitForNote(alice.page, uid, { likes: 6 })
    await bob.context.setOffline(false)
    await waitSynced(bob.page)
    await waitForNote(alice.page, uid, { likes: 10 })
    await waitForNote(bob.page, uid, { likes: 10 })
    await eventually(
      '10 likes in the database',
      () => likesInDatabase(uid),
      (n) => n === 10,
    )
    await screenshot(bob.page, 'b-bob-total')
    expect(alice.problems).toEqual([])
    expect(bob.problems).toEqual([])
  })
})
