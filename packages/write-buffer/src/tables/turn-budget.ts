/**
 * Gives the event loop a turn to a loop of awaited calls that would never leave the microtask
 * queue. On the memory driver (and on a cluster primary) a call can complete on microtasks
 * alone, so `for (;;) await buffer.table(t).where(1).increment('n')` would never let a timer,
 * an I/O callback or a signal handler run: no background flush or checkpoint, and SIGTERM never
 * handled. Every `limit` calls, the calls wait for the next event-loop turn (`setImmediate`):
 * all of them, until it comes, so concurrent callers cannot keep the microtask queue busy
 * either. Elsewhere (a server's calls spread over turns) that is one turn of latency for one
 * call in `limit`.
 */
export class TurnBudget {
  private used = 0
  private nextTurn: Promise<void> | undefined

  constructor(private readonly limit: number) {}

  /** Counts one call: undefined when it may resolve now, else the next turn to wait for. */
  spend(): Promise<void> | undefined {
    if (this.nextTurn !== undefined) return this.nextTurn
    if (++this.used < this.limit) return undefined
    this.nextTurn = new Promise<void>((resolve) =>
      setImmediate(() => {
        this.used = 0
        this.nextTurn = undefined
        resolve()
      }),
    )
    return this.nextTurn
  }
}
