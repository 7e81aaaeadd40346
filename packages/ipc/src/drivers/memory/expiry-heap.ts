/**
 * A binary min-heap of (expiresAt, key) deadlines, so the store can drop expired keys without a
 * timer per key. Entries are never updated in place: when a key's deadline changes a new entry
 * is pushed and the old one becomes stale; the store checks each popped entry against the key's
 * current deadline and ignores stale ones.
 * @internal
 */
export interface Deadline {
  at: number
  key: string
  /** true for the lock namespace, false for data keys. */
  lock: boolean
}

export class ExpiryHeap {
  private items: Deadline[] = []

  get size(): number {
    return this.items.length
  }

  push(at: number, key: string, lock: boolean): void {
    const items = this.items
    items.push({ at, key, lock })
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.at <= items[i]!.at) break
      ;[items[parent], items[i]] = [items[i]!, items[parent]!]
      i = parent
    }
  }

  /** The earliest deadline, if it is due at `now`, removed from the heap. */
  popDue(now: number): Deadline | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined || top.at > now) return undefined
    const last = items.pop()!
    if (items.length > 0) {
      items[0] = last
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < items.length && items[left]!.at < items[smallest]!.at) smallest = left
        if (right < items.length && items[right]!.at < items[smallest]!.at) smallest = right
        if (smallest === i) break
        ;[items[smallest], items[i]] = [items[i]!, items[smallest]!]
        i = smallest
      }
    }
    return top
  }

  /** Replaces the content (used to drop stale entries when they pile up). */
  rebuild(deadlines: Deadline[]): void {
    this.items = []
    for (const deadline of deadlines) this.push(deadline.at, deadline.key, deadline.lock)
  }
}
