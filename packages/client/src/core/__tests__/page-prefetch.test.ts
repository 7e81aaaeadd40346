import { describe, expect, it } from 'vitest'
import { PagePrefetch } from '../sync/page-prefetch.js'

interface Page {
  n: number
  hasMore: boolean
  checkpoint: string
}

/** A server of `count` pages whose answers the test releases one by one. */
function pagedServer(count: number) {
  const asked: string[] = []
  const pending: Array<{ checkpoint: string; resolve: (page: Page) => void; reject: (e: Error) => void }> = []
  const fetch = (checkpoint: string, first: boolean) => {
    asked.push(first ? `${checkpoint} (first)` : checkpoint)
    return new Promise<Page>((resolve, reject) => pending.push({ checkpoint, resolve, reject }))
  }
  const answer = () => {
    const request = pending.shift()!
    const n = Number(request.checkpoint)
    request.resolve({ n, hasMore: n + 1 < count, checkpoint: String(n + 1) })
  }
  const fail = (message: string) => pending.shift()!.reject(new Error(message))
  return { asked, pending, fetch, answer, fail }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('PagePrefetch', () => {
  it('asks for the next page as soon as one arrives, up to depth pages not yet taken', async () => {
    const server = pagedServer(5)
    const pages = new PagePrefetch(server.fetch, 2)
    pages.start('0')
    expect(server.asked).toEqual(['0 (first)'])
    server.answer() // page 0 arrives: page 1 is asked for before the writer takes page 0
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1'])
    server.answer() // page 1 arrives: pages 0 and 1 wait untaken, so page 2 waits too
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1'])
    expect((await pages.next()).n).toBe(0) // taking page 0 asks for page 2
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1', '2'])
    expect((await pages.next()).n).toBe(1)
    server.answer()
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1', '2', '3'])
    expect((await pages.next()).n).toBe(2)
    server.answer()
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1', '2', '3', '4'])
    server.answer()
    expect((await pages.next()).n).toBe(3)
    const last = await pages.next()
    expect(last).toEqual({ n: 4, hasMore: false, checkpoint: '5' })
    await settle()
    expect(server.asked).toHaveLength(5) // nothing after the last page
  })

  it('keeps one request in flight at a time, in checkpoint order', async () => {
    const server = pagedServer(10)
    const pages = new PagePrefetch(server.fetch, 3)
    pages.start('0')
    for (let i = 0; i < 3; i++) {
      expect(server.pending).toHaveLength(1)
      server.answer()
      await settle()
    }
    expect(server.asked).toEqual(['0 (first)', '1', '2'])
    expect(server.pending).toHaveLength(0) // three pages arrived, none taken: the chain waits
  })

  it('hands a failed request to the writer, and asks for nothing after it', async () => {
    const server = pagedServer(5)
    const pages = new PagePrefetch(server.fetch, 2)
    pages.start('0')
    server.answer()
    await settle()
    server.fail('CHECKPOINT_EXPIRED')
    await settle()
    expect((await pages.next()).n).toBe(0)
    await expect(pages.next()).rejects.toThrow('CHECKPOINT_EXPIRED')
    await settle()
    expect(server.asked).toEqual(['0 (first)', '1'])
  })

  it('asks for nothing more once stopped', async () => {
    const server = pagedServer(5)
    const pages = new PagePrefetch(server.fetch, 2)
    pages.start('0')
    pages.stop()
    server.answer()
    await settle()
    expect(server.asked).toEqual(['0 (first)'])
    expect((await pages.next()).n).toBe(0)
  })

  it('refuses a depth that is not a whole number >= 1, and a next() with nothing asked for', async () => {
    const fetch = async () => ({ hasMore: false, checkpoint: 'x' })
    expect(() => new PagePrefetch(fetch, 0)).toThrow(RangeError)
    expect(() => new PagePrefetch(fetch, 1.5)).toThrow(RangeError)
    const pages = new PagePrefetch(fetch, 1)
    await expect(pages.next()).rejects.toThrow('no page asked for')
  })
})
