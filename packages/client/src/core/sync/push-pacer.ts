/** The smallest batch the pacer shrinks to (or `pushBatchSize`, when that is smaller). */
export const MIN_PUSH_BATCH = 25

/** How pushes are sized and timed. @internal */
export interface PushPacerOptions {
  /** The largest batch (the client's `pushBatchSize`). */
  maxBatch: number
  /** The timeout of an empty push (the client's `requestTimeoutMs`). */
  baseTimeoutMs: number
  /** What every change of a push adds to its timeout (the client's `pushTimeoutPerChangeMs`). */
  perChangeMs: number
}

/**
 * Sizes and times pushes, so that an overloaded server gets smaller pushes and more time:
 * - the timeout of a push of `n` changes is `baseTimeoutMs + n * perChangeMs`;
 * - a push whose answer took more than half of its timeout (or never came in time) halves the
 *   next batch, down to `MIN_PUSH_BATCH`;
 * - a full batch answered within a quarter of its timeout doubles the next one, up to
 *   `maxBatch`. Between a quarter and a half the size stays, so it does not flip back and forth.
 * The state lives for the client's lifetime (a reconnect does not make the server faster).
 * @internal
 */
export class PushPacer {
  private size: number
  private readonly min: number

  constructor(private readonly options: PushPacerOptions) {
    this.size = Math.max(1, options.maxBatch)
    this.min = Math.min(MIN_PUSH_BATCH, this.size)
  }

  /** The number of changes to send in the next push. */
  get batchSize(): number {
    return this.size
  }

  /** The timeout of a push of `changes` changes. */
  timeoutFor(changes: number): number {
    return this.options.baseTimeoutMs + changes * this.options.perChangeMs
  }

  /** Learns from one answered push: `changes` sent, answered after `elapsedMs`. */
  record(changes: number, elapsedMs: number): void {
    const timeout = this.timeoutFor(changes)
    if (elapsedMs > timeout / 2) this.size = Math.max(this.min, Math.floor(this.size / 2))
    else if (elapsedMs < timeout / 4 && changes >= this.size) {
      this.size = Math.min(Math.max(1, this.options.maxBatch), this.size * 2)
    }
  }
}
