import { WriteBufferError } from '../errors.js'

/**
 * The buffer's open/closed state and the work in progress: every call passes through here, so
 * start-up (`ready`), shutdown (`closing`) and the final wait for running work agree.
 */
export class Gate {
  /** Resolves once start-up recovery is done (set by the buffer right after construction). */
  get ready(): Promise<void> {
    return this.readyPromise
  }
  set ready(promise: Promise<void>) {
    this.readyPromise = promise
    this.isReady = false
    promise.then(
      () => {
        if (this.readyPromise === promise) this.isReady = true
      },
      () => undefined,
    )
  }
  /** `ready` has resolved: calls need not wait for it. */
  isReady = false
  private readyPromise: Promise<void> = Promise.resolve()
  /** Set once `close()` began. */
  closing: Promise<void> | undefined
  /** A shutdown signal started the close (the process ends after the final flush). */
  signalled = false
  /** Start-up recovery is done: tables registered from now on recover on their own. */
  started = false
  private readonly work = new Set<Promise<unknown>>()

  /** Keeps `promise` among the work `close()` waits for until it settles. */
  track(promise: Promise<unknown>): void {
    this.work.add(promise)
    void promise.finally(() => this.work.delete(promise))
  }

  /** Awaits `run`, counted as work in progress meanwhile. */
  async hold<T>(run: Promise<T>): Promise<T> {
    this.work.add(run)
    try {
      return await run
    } finally {
      this.work.delete(run)
    }
  }

  /** Waits for the work in progress now (failures ignored). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.work])
  }

  /**
   * A call made once `close()` began: rejected with WB_CLOSED. After a shutdown signal, only
   * once the final flush is done and the process had a turn to end (the buffer re-raises the
   * signal): a batch job's bare loop of awaited calls must not end the process with an
   * unhandled WB_CLOSED before its acknowledged writes are flushed.
   */
  refused(): Promise<never> {
    const error = new WriteBufferError('WB_CLOSED', 'The write buffer is closed.')
    if (!this.signalled || !this.closing) return Promise.reject(error)
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))
    return this.closing.then(nextTurn, nextTurn).then(() => Promise.reject(error))
  }

  /** Refuses once closing, else waits for start-up: the entry of every public call. */
  async open(): Promise<void> {
    if (this.closing) return this.refused()
    await this.ready
  }
}
