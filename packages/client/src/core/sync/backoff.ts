/** Exponential backoff with full jitter, reset after a success. */
export interface BackoffOptions {
  /** First delay. @default 500 */
  minDelayMs?: number
  /** Longest delay. @default 30000 */
  maxDelayMs?: number
  /** Random source in [0, 1), injectable for tests. @default Math.random */
  random?: () => number
}

export class Backoff {
  private attempt = 0
  private readonly min: number
  private readonly max: number
  private readonly random: () => number

  constructor(options: BackoffOptions = {}) {
    this.min = options.minDelayMs ?? 500
    this.max = options.maxDelayMs ?? 30_000
    this.random = options.random ?? Math.random
  }

  /** The delay before the next attempt; each call doubles the ceiling. */
  next(): number {
    const ceiling = Math.min(this.max, this.min * 2 ** this.attempt)
    this.attempt += 1
    return Math.round(this.min / 2 + this.random() * (ceiling - this.min / 2))
  }

  reset(): void {
    this.attempt = 0
  }
}
