/**
 * Open-loop scheduling: the k-th event of a stream of `rate` events/s is due at
 * `start + k * 1000 / rate`, whatever happened to the earlier ones. The pacer wakes every
 * millisecond or so and hands each due event its scheduled time, so a slow answer never delays
 * the next send (no coordinated omission): latencies are measured from that scheduled time.
 */
export interface Stream {
  /** Events per second (0: none). */
  rate: number
  /** Called once per event with its index and scheduled time (performance.now() scale). */
  fire: (index: number, at: number) => void
}

export class Pacer {
  private timer: NodeJS.Timeout | undefined
  private readonly issued: number[]
  private start = 0
  private end = 0
  private resolveDone: (() => void) | undefined

  constructor(private readonly streams: Stream[]) {
    this.issued = streams.map(() => 0)
  }

  /** Runs the streams for `durationMs`; resolves when the last event was handed out. */
  run(durationMs: number): Promise<void> {
    this.start = performance.now()
    this.end = this.start + durationMs
    return new Promise((resolve) => {
      this.resolveDone = resolve
      this.tick()
    })
  }

  /** The scheduled start (performance.now() scale). */
  get startedAt(): number {
    return this.start
  }

  private tick(): void {
    const now = Math.min(performance.now(), this.end)
    this.streams.forEach((stream, i) => {
      if (stream.rate <= 0) return
      const interval = 1000 / stream.rate
      const due = Math.floor((now - this.start) / interval) + 1
      const last = Math.ceil((this.end - this.start) / interval)
      for (let k = this.issued[i]!; k < Math.min(due, last); k++) stream.fire(k, this.start + k * interval)
      this.issued[i] = Math.max(this.issued[i]!, Math.min(due, last))
    })
    if (performance.now() >= this.end) {
      this.resolveDone?.()
      return
    }
    this.timer = setTimeout(() => this.tick(), 1)
  }

  stop(): void {
    clearTimeout(this.timer)
    this.resolveDone?.()
  }
}
