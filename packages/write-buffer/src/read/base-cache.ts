/**
 * Database values read by `get()`, so a hot counter is not read from the database on every
 * call. An entry is valid only for the seqlock version it was read at (every flush changes the
 * version) and only for `ttlMs` (writes that bypass the buffer). Failed reads are never cached.
 */
export class BaseCache {
  private readonly entries = new Map<
    string,
    { version: number; expiresAt: number; value: unknown; exists: boolean }
  >()

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, version: number): { value: unknown; exists: boolean } | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.version !== version || entry.expiresAt <= this.now()) {
      this.entries.delete(key)
      return undefined
    }
    return entry
  }

  set(key: string, version: number, value: unknown, exists: boolean): void {
    if (this.ttlMs <= 0) return
    this.entries.delete(key)
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    this.entries.set(key, { version, expiresAt: this.now() + this.ttlMs, value, exists })
  }

  clear(): void {
    this.entries.clear()
  }

  get size(): number {
    return this.entries.size
  }
}
