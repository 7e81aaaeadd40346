import type { Page } from 'playwright-core'

/** Polls `read` until `done(value)` holds; fails with the last value after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await read()
    if (done(last)) return last
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

export interface ShownNote {
  uid: string
  title: string
  body: string
  likes: number
}

/** The notes the page shows, in page order, as the person sees them. */
export function readNotes(page: Page): Promise<ShownNote[]> {
  return page.$$eval('[data-testid="note"]', (cards) =>
    cards.map((card) => ({
      uid: card.getAttribute('data-uid') ?? '',
      title: (card.querySelector('[data-testid="note-title"]') as HTMLInputElement).value,
      body: (card.querySelector('[data-testid="note-body"]') as HTMLTextAreaElement).value,
      likes: Number(card.querySelector('[data-testid="note-likes"]')?.textContent),
    })),
  )
}

export async function connectionState(page: Page): Promise<string> {
  return ((await page.getByTestId('connection-state').textContent()) ?? '').trim()
}

export async function pendingCount(page: Page): Promise<number> {
  return Number(await page.getByTestId('pending-count').textContent())
}

/** The pending count once it stopped moving (local writes are counted a moment after they land). */
export async function settledPendingCount(page: Page): Promise<number> {
  let previous = -1
  const settled = await eventually(
    'pending count to settle',
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      const [before, now] = [previous, await pendingCount(page)]
      previous = now
      return { before, now }
    },
    ({ before, now }) => before === now,
  )
  return settled.now
}

/** Waits until the app says it is offline (it noticed the lost connection or the switch). */
export async function waitOffline(page: Page): Promise<void> {
  await eventually(
    'connection state',
    () => connectionState(page),
    (s) => s.startsWith('Offline'),
  )
}

/** Waits until the app is online with nothing left to send. */
export async function waitSynced(page: Page): Promise<void> {
  await eventually(
    'online with no pending changes',
    async () => ({ state: await connectionState(page), pending: await pendingCount(page) }),
    ({ state, pending }) => state.startsWith('Online') && pending === 0,
  )
}

function card(page: Page, uid: string) {
  return page.locator(`[data-testid="note"][data-uid="${uid}"]`)
}

/** Clicks "New note", types a title and a body; returns the new note's uid. */
export async function createNote(page: Page, title: string, body: string): Promise<string> {
  const before = new Set((await readNotes(page)).map((note) => note.uid))
  await page.getByTestId('new-note').click()
  const notes = await eventually(
    'a new note',
    () => readNotes(page),
    (list) => list.some((note) => !before.has(note.uid)),
  )
  const uid = notes.find((note) => !before.has(note.uid))!.uid
  await editField(page, uid, 'title', title)
  await editField(page, uid, 'body', body)
  return uid
}

/** Replaces a field's text as a person would, then leaves the field (which saves at once). */
export async function editField(
  page: Page,
  uid: string,
  field: 'title' | 'body',
  text: string,
): Promise<void> {
  const input = card(page, uid).getByTestId(`note-${field}`)
  await input.fill(text)
  await input.blur()
  await eventually(
    `${field} of ${uid} saved`,
    () => readNotes(page),
    (list) => list.find((note) => note.uid === uid)?.[field] === text,
  )
}

export async function like(page: Page, uid: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await card(page, uid).getByTestId('note-like').click()
}

export async function deleteNote(page: Page, uid: string): Promise<void> {
  await card(page, uid).getByTestId('note-delete').click()
  await eventually(
    `${uid} gone`,
    () => readNotes(page),
    (list) => !list.some((note) => note.uid === uid),
  )
}

/** Waits until the page shows a note with these fields. */
export async function waitForNote(page: Page, uid: string, fields: Partial<ShownNote>): Promise<ShownNote> {
  const notes = await eventually(
    `note ${uid} showing ${JSON.stringify(fields)}`,
    () => readNotes(page),
    (list) => {
      const note = list.find((n) => n.uid === uid)
      return !!note && Object.entries(fields).every(([key, value]) => note[key as keyof ShownNote] === value)
    },
  )
  return notes.find((n) => n.uid === uid)!
}

/** Flips the app's "Work offline" switch. */
export async function toggleWorkOffline(page: Page): Promise<void> {
  await page.locator('label.switch').click()
}
