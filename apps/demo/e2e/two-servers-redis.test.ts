import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNote, editField, eventually, like, waitForNote, waitSynced } from './helpers/app.js'
import { type AppWindow, launchBrowser, openWindow, screenshot } from './helpers/browser.js'
import { requireBrowser } from './helpers/require-browser.js'
import { startTestServer, type TestServer } from './helpers/server.js'

// Two demo servers share one Redis (IPC: presence, activity, live changes, the write buffer's
// pending state) and one PostgreSQL database. Skipped, with the reason, when either or the
// browser is missing; required under CI=true.
const chromium = requireBrowser()
const hasRedis = await requireServer('redis')
const hasPostgres = hasRedis && (await requireServer('postgres'))

describe.runIf(chromium && hasRedis && hasPostgres)('two demo servers on one Redis', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  const servers: TestServer[] = []
  let browser: Browser
  const windows: AppWindow[] = []

  beforeAll(async () => {
    database = await createTestDatabase('tidesync_demo')
    const shared = { databaseUrl: database.url, redisUrl, redisPrefix: `${uniqueId('demo')}:` }
    servers.push(await startTestServer({ ...shared, serverId: 'one' }))
    servers.push(await startTestServer({ ...shared, serverId: 'two' }))
    browser = await launchBrowser(chromium!)
  })
  afterAll(async () => {
    for (const window of windows) await window.context.close().catch(() => {})
    await browser?.close()
    for (const server of servers) await server.close().catch((error) => console.error(error))
    await database?.drop()
  })

  it('sends a change made on one server live to a window on the other', async () => {
    const [one, two] = servers as [TestServer, TestServer]
    const alice = await openWindow(browser, one.url, 'Alice')
    const bob = await openWindow(browser, two.url, 'Bob')
    windows.push(alice, bob)
    await waitSynced(alice.page)
    await waitSynced(bob.page)

    // Presence is one IPC set: each window sees both people, on their own servers.
    for (const window of [alice, bob]) {
      await eventually(
        `${window.name} sees who is online`,
        () => window.page.getByTestId('presence').allTextContents(),
        (lines) =>
          lines.some((l) => l.includes('Alice') && l.includes('server one')) &&
          lines.some((l) => l.includes('Bob') && l.includes('server two')),
      )
    }

    // A note created on server one appears on server two without a reload (IPC pub/sub).
    const uid = await createNote(alice.page, 'Across servers', 'Written through server one')
    await waitForNote(bob.page, uid, { title: 'Across servers', body: 'Written through server one' })

    // And back: Bob's edit reaches Alice live.
    await editField(bob.page, uid, 'body', 'Answered through server two')
    await waitForNote(alice.page, uid, { body: 'Answered through server two' })

    // Likes on both servers add up in the one database (the write buffer's state is in Redis).
    await like(alice.page, uid, 2)
    await like(bob.page, uid, 3)
    await waitForNote(alice.page, uid, { likes: 5 })
    await waitForNote(bob.page, uid, { likes: 5 })
    await eventually(
      'likes in PostgreSQL',
      async () => (await one.notesInDatabase()).find((row) => row.uid === uid)?.likes,
      (likes) => likes === 5,
    )

    // The activity feed is shared too.
    await eventually(
      'activity from both servers',
      () => alice.page.getByTestId('activity').allTextContents(),
      (lines) =>
        lines.some((l) => l.includes('Bob edited')) && lines.some((l) => l.includes('Alice created')),
    )
    await screenshot(alice.page, 'd-alice-server-one')
    await screenshot(bob.page, 'd-bob-server-two')
    expect(await bob.page.getByTestId('server-info').textContent()).toContain('Server two')
  })
})
