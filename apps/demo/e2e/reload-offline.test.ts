import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  connectionState,
  createNote,
  editField,
  eventually,
  pendingCount,
  readNotes,
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

describe.runIf(chromium)('reloading while offline', () => {
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

  it('keeps pending changes across a reload without network and syncs them later', async () => {
    const alice = await openWindow(browser, server.url, 'Alice')
    const bob = await openWindow(browser, server.url, 'Bob')
    windows.push(alice, bob)
    // The service worker keeps the app itself available offline; wait until it is installed.
    await alice.page.waitForFunction(
      async () => !!(await navigator.serviceWorker.getRegistration())?.active,
      null,
      {
        timeout: 15_000,
      },
    )
    const groceries = await createNote(alice.page, 'Groceries', 'Milk')
    await waitForNote(bob.page, groceries, { title: 'Groceries' })

    await alice.context.setOffline(true)
    await waitOffline(alice.page)
    await editField(alice.page, groceries, 'body', 'Milk, apples, coffee')
    const idea = await createNote(alice.page, 'Idea from the train', 'Write it down before it is gone')
    const pending = await settledPendingCount(alice.page)
    expect(pending).toBeGreaterThanOrEqual(3)

    // A reload with no network: the page comes from the service worker, the notes and the
    // queued changes from IndexedDB.
    await alice.page.reload()
    await waitForNote(alice.page, idea, { title: 'Idea from the train' })
    await waitForNote(alice.page, groceries, { body: 'Milk, apples, coffee' })
    await eventually(
      'the same pending count after the reload',
      () => pendingCount(alice.page),
      (n) => n === pending,
    )
    await waitOffline(alice.page)
    await screenshot(alice.page, 'c-alice-reloaded-offline')
    expect((await readNotes(bob.page)).map((n) => n.uid)).not.toContain(idea)

    // The network comes back: the queued changes reach the server and Bob.
    await alice.context.setOffline(false)
    await waitSynced(alice.page)
    await waitForNote(bob.page, idea, {
      title: 'Idea from the train',
      body: 'Write it down before it is gone',
    })
    await waitForNote(bob.page, groceries, { body: 'Milk, apples, coffee' })
    const rows = await server.notesInDatabase()
    expect(rows.find((row) => row.uid === idea)).toMatchObject({ title: 'Idea from the train' })
    expect(rows.find((row) => row.uid === groceries)).toMatchObject({ body: 'Milk, apples, coffee' })
    await screenshot(bob.page, 'c-bob-after-sync')
  })

  it('keeps the "work offline" switch and the queue across a reload', async () => {
    const carol = await openWindow(browser, server.url, 'Carol')
    windows.push(carol)
    await waitSynced(carol.page)
    await toggleWorkOffline(carol.page)
    await waitOffline(carol.page)
    const uid = await createNote(carol.page, 'Switched off', 'Still saved')
    await carol.page.reload()
    await waitForNote(carol.page, uid, { title: 'Switched off' })
    expect(await connectionState(carol.page)).toBe('Offline (switched off)')
    expect(await carol.page.getByTestId('offline-switch').isChecked()).toBe(true)
    expect(await settledPendingCount(carol.page)).toBeGreaterThanOrEqual(3)
    expect((await server.notesInDatabase()).map((row) => row.uid)).not.toContain(uid)

    await toggleWorkOffline(carol.page)
    await waitSynced(carol.page)
    await eventually(
      'the note in the database',
      async () => (await server.notesInDatabase()).find((row) => row.uid === uid),
      (row) => row?.body === 'Still saved',
    )
  })
})
