/**
 * Mutual exclusion per string key, first come first served. A key costs memory only while
 * someone holds or awaits it.
 *
 * Why a promise chain and not a list of waiters: each `acquire` only needs the promise of the
 * one before it, so a waiter that gives up still has to take its turn and release (callers
 * release at once when their request is no longer wanted), and nothing needs cancelling.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>()

  /** Keys currently held or awaited. */
  get size(): number {
    return this.tails.size
  }

  /**
   * Waits until every earlier `acquire` of `key` has released, then returns the release
   * function (idempotent). The caller's place in line is taken synchronously, when it calls.
   */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key)
    let open!: () => void
    const mine = new Promise<void>((resolve) => {
      open = resolve
    })
    const tail = previous ? previous.then(() => mine) : mine
    this.tails.set(key, tail)
    if (previous) await previous
    let released = false
    return () => {
      if (released) return
      released = true
      open()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
