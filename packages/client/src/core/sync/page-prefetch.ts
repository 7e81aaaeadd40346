/** What the prefetch needs of a page: whether another follows, and the checkpoint that names it. */
interface ChainedPage {
  hasMore: boolean
  checkpoint: string
}

/**
 * The pages of one pull, asked for ahead of the writer. Each request needs the checkpoint of the
 * page before it, so the next request goes out as soon as a page arrives, not when the writer
 * gets to it: the server then reads and encodes the next page while the client still writes the
 * one before. At most `depth` pages are asked for or arrived and not yet taken (`next`); past
 * that, asking waits until the writer takes one, so a slow writer holds a bounded number of
 * pages in memory.
 *
 * A failed request ends the chain: `next` rejects with its error when the writer reaches that
 * page. `stop` (the pull ended early) asks for nothing more.
 * @internal
 */
export class PagePrefetch<P extends ChainedPage> {
  private readonly waiting: Array<Promise<P>> = []
  /** The checkpoint of the page to ask for once the writer takes one (the chain is full). */
  private held: string | null = null
  private stopped = false

  constructor(
    private readonly fetch: (checkpoint: string, first: boolean) => Promise<P>,
    private readonly depth: number,
  ) {
    if (!Number.isInteger(depth) || depth < 1)
      throw new RangeError(`depth must be a whole number >= 1, got ${depth}`)
  }

  /** Asks for the first page. */
  start(checkpoint: string): void {
    this.ask(checkpoint, true)
  }

  /** The next page, in order. Call once per page until one says `hasMore: false`. */
  async next(): Promise<P> {
    const page = this.waiting.shift()
    if (!page)
      throw new Error('PagePrefetch.next: no page asked for (start first, and stop at hasMore: false)')
    this.resume()
    return page
  }

  /** Asks for nothing more (pages already asked for still arrive, unread). */
  stop(): void {
    this.stopped = true
    this.held = null
  }

  private ask(checkpoint: string, first = false): void {
    const page = this.fetch(checkpoint, first)
    this.waiting.push(page)
    page.then(
      (arrived) => {
        if (this.stopped || !arrived.hasMore) return
        this.held = arrived.checkpoint
        this.resume()
      },
      () => {}, // the writer gets this error from next()
    )
  }

  private resume(): void {
    if (this.held === null || this.stopped || this.waiting.length >= this.depth) return
    const checkpoint = this.held
    this.held = null
    this.ask(checkpoint)
  }
}
