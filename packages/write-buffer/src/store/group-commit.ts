interface Group<T> {
  items: T[]
  promise: Promise<number>
  resolve: (count: number) => void
  reject: (error: unknown) => void
}

/**
 * Commits what is appended for one key (a table) in the same event-loop turn as one group: the
 * group is sealed at the end of the turn (`setImmediate`) and handed to `commit`, groups of a key
 * in order. Every `append` of a group resolves when its group is committed, with how many items
 * this process appended for the key since `reset(key)`; or rejects with the commit's error (the
 * items are not acknowledged).
 *
 * Why: one IPC call (and one LMDB entry, in the journal) per table and turn instead of one per
 * operation; and a caller that awaits `append` in a loop yields to the event loop each time, so
 * the flush it feeds gets its I/O.
 */
export class GroupCommit<T> {
  private readonly open = new Map<string, Group<T>>()
  private readonly tails = new Map<string, Promise<unknown>>()
  private readonly appended = new Map<string, number>()

  /**
   * @param commit writes one group. `previous` settles when the key's previous group is
   * committed: `commit` may start work that can overlap it, and must await it before the step
   * that has to stay in order.
   */
  constructor(
    private readonly commit: (key: string, items: T[], previous: Promise<unknown>) => Promise<void>,
  ) {}

  append(key: string, item: T): Promise<number> {
    let group = this.open.get(key)
    if (!group) {
      let resolve!: (count: number) => void
      let reject!: (error: unknown) => void
      const promise = new Promise<number>((res, rej) => {
        resolve = res
        reject = rej
      })
      const created: Group<T> = { items: [], promise, resolve, reject }
      group = created
      this.open.set(key, created)
      setImmediate(() => this.seal(key, created))
    }
    group.items.push(item)
    return group.promise
  }

  /** A flush of `key` starts in this process: it takes every group committed so far. */
  reset(key: string): void {
    this.appended.delete(key)
  }

  /** Seals the open groups now and resolves when every group so far is committed (or failed). */
  async drain(): Promise<void> {
    for (const [key, group] of [...this.open]) this.seal(key, group)
    await Promise.all([...this.tails.values()])
  }

  private seal(key: string, group: Group<T>): void {
    // Sealed once: at the end of its turn, or earlier by drain().
    if (this.open.get(key) !== group) return
    this.open.delete(key)
    const previous = this.tails.get(key) ?? Promise.resolve()
    const done = this.commit(key, group.items, previous).then(() => {
      const count = (this.appended.get(key) ?? 0) + group.items.length
      this.appended.set(key, count)
      return count
    })
    done.then(group.resolve, group.reject)
    this.tails.set(
      key,
      done.catch(() => undefined),
    )
  }
}
