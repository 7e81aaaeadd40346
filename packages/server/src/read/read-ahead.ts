/**
 * Pages of initial loads read before they are asked for. A client pulls page after page, each
 * request carrying the checkpoint the previous answer gave; the server knows that checkpoint as
 * soon as it answered, so it reads the next page right away, while the answer travels and the
 * client stores it. The next request then finds its page read (or being read). The caller may
 * read further ahead (`peek` at a page being read, then start the one after it) so that the
 * database's time per page overlaps the server's encoding of the pages before it.
 *
 * Why this is safe: a snapshot page is the current state of the records after a uid, read at
 * any moment after the load's start revision; every change made after that revision reaches the
 * client from the change log when the snapshot ends, whenever its pages were read. A page read a
 * few milliseconds early is what a faster client would have got.
 *
 * Bounded: at most `max` pages held, each for at most `ttlMs` (a client that went away leaves
 * one page behind until it expires or is pushed out). A failed read is dropped: the request
 * then reads by itself.
 * @internal
 */
export class ReadAhead<T> {
  private readonly pages = new Map<string, { at: number; value: Promise<T> }>()

  constructor(
    private readonly now: () => number,
    private readonly max = 32,
    private readonly ttlMs = 15_000,
  ) {}

  /** Starts reading the page that `key` (filter, checkpoint, limit) will ask for. */
  start(key: string, read: () => Promise<T>): void {
    this.expire()
    if (this.pages.has(key)) return
    const value = read()
    const entry = { at: this.now(), value }
    // Only this entry: once taken, a newer read may hold the key by the time this one fails.
    value.catch(() => {
      if (this.pages.get(key) === entry) this.pages.delete(key)
    })
    this.pages.set(key, entry)
    while (this.pages.size > this.max) this.pages.delete(this.pages.keys().next().value!)
  }

  /** The page being read ahead for `key`, left in place, or undefined. */
  peek(key: string): Promise<T> | undefined {
    return this.pages.get(key)?.value
  }

  /** The page read ahead for `key` (taken: a second request reads by itself), or undefined. */
  take(key: string): Promise<T> | undefined {
    this.expire()
    const entry = this.pages.get(key)
    if (!entry) return undefined
    this.pages.delete(key)
    return entry.value
  }

  private expire(): void {
    const oldest = this.now() - this.ttlMs
    for (const [key, entry] of this.pages) {
      if (entry.at >= oldest) break
      this.pages.delete(key)
    }
  }
}
