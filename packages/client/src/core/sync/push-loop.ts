import type { Subscription } from 'rxjs'
import type { CrossTabLock } from '../db/lock.js'
import {
  TidesyncClientError,
  type TidesyncPushTimeoutError,
  type TidesyncServerError,
  toClientError,
} from '../errors.js'
import { live } from '../live/query.js'
import type { SyncDeps } from './deps.js'
import { type LateHooks, pushBatch } from './push-batch.js'
import { PushPacer, type PushPacerOptions } from './push-pacer.js'
import { refreshRecords } from './refresh.js'

/** The name of the cross-tab lock that serialises pushes. */
export const PUSH_LOCK = 'push'

/** What one push run did. */
export interface PushReport {
  /** Changes the server answered for. */
  answered: number
  /** One error per change the server rejected (those changes are dropped and their records restored). */
  rejected: TidesyncServerError[]
}

/** What the push loop tells the sync engine. @internal */
export interface PushLoopHooks {
  /** Whether pushes can go out (connected, and not taken offline). */
  online(): boolean
  /** A push run started or ended (`status.syncing`). */
  runningChanged(): void
  /** An error to show (`status.error`, `errors$`). */
  report(error: TidesyncClientError): void
  /** A run that no sync cycle waited for ended without a rejected change. */
  succeeded(): void
  /** A run that no sync cycle waited for failed: report it and try again later. */
  failed(error: TidesyncClientError): void
}

/**
 * When the outbox goes to the server. The one trigger is the outbox gaining entries (local
 * writes and reconcile repairs only queue; they do not push), noticed two ways:
 * - in this tab, at the commit of the transaction that queued them (`LocalDb.onQueued`), so a
 *   run is under way (`status.syncing`) before the write's promise resolves;
 * - from other tabs (which push their own writes, unless they went offline or closed first),
 *   through the live count of the outbox that also feeds `status.pending`: while no run is under
 *   way, a count that grew, or that is not zero after a run ended, starts one.
 * The sync cycle also runs one after (re)connecting. A trigger while a run is under way makes it
 * read the outbox once more when it is done, so one write is one run: one cross-tab lock, one
 * read of the outbox, one `sync:push`.
 *
 * A run is rounds of pushes, one more while triggers came in during the last one. A round
 * pushes batch after batch (`pushBatch`), each under the cross-tab lock (no two tabs push at
 * once), until a batch was not full or it pushed every entry queued when it began (what was
 * queued since is the next round's). A push that outlives its timeout stays open (see
 * `pushBatch`): it is reported (`CLIENT_PUSH_TIMEOUT`, kept in `status.error` while it is open),
 * the sync cycle goes on without it (`untilPushedOrLate`), and when its answer comes the run goes
 * on as a timely one.
 *
 * The sync cycle waits for the round that pushes what was queued when it asked, not for the run
 * to end: a client that keeps writing keeps its run going, and its subsets must still sync.
 * @internal
 */
export class PushLoop {
  private current: Promise<PushReport> | null = null
  private again = false
  /** A run ended since the last count of the outbox. */
  private endedSinceCount = false
  private readonly unwatch: Array<() => void> = []
  /** Resolves once the current run outlived its timeout. */
  private late: Promise<void> = Promise.resolve()
  private markLate: () => void = () => {}
  /** The timeout of the current run's open push, while it is open. */
  private lateError: TidesyncPushTimeoutError | null = null
  /** Whether the end of the current run is already reported when it comes. */
  private endWatched = false
  /** Rounds started, over every run (the number of the current or last round). */
  private rounds = 0
  /** Callers waiting for the end of a round of the current run. */
  private roundWaiters: Array<{ round: number; done: (report: PushReport) => void }> = []
  private readonly lateHooks: LateHooks = {
    late: (error) => {
      if (this.current) this.lateError = error
      this.markLate()
      this.hooks.report(error)
    },
    answered: () => {
      const shown = this.lateError
      this.armLate()
      if (shown && this.deps.status.value.error === shown) this.deps.status.patch({ error: null })
    },
  }

  private readonly pacer: PushPacer

  constructor(
    private readonly deps: SyncDeps,
    private readonly lock: CrossTabLock,
    pacing: PushPacerOptions,
    private readonly hooks: PushLoopHooks,
  ) {
    this.pacer = new PushPacer(pacing)
  }

  /** Starts watching the outbox (see the class). */
  start(): void {
    if (this.unwatch.length > 0) return
    const { ctx, status } = this.deps
    this.unwatch.push(ctx.db.onQueued(() => this.request()))
    let last = 0
    const counting: Subscription = live(() => ctx.db.outbox.count()).subscribe({
      next: (count) => {
        status.patch({ pending: count })
        // Grown, or still holding entries once a run ended: queued by a tab that did not push them.
        if (count > 0 && !this.current && (count > last || this.endedSinceCount)) this.request()
        this.endedSinceCount = false
        last = count
      },
      error: (error) => ctx.logger.error('cannot count pending changes', error),
    })
    this.unwatch.push(() => counting.unsubscribe())
  }

  stop(): void {
    for (const stop of this.unwatch.splice(0)) stop()
  }

  /** A push run is under way (late or not). */
  get running(): boolean {
    return this.current !== null
  }

  /** The timeout error of the current run's push while that push is still open after it. */
  get openTimeout(): TidesyncPushTimeoutError | null {
    return this.lateError
  }

  /**
   * Pushes what is queued now (starting a run, or joining the one under way) for the sync cycle:
   * resolves once a round that began after this call ended, with the report of the run so far,
   * or with null once its push outlived its timeout. Writes queued meanwhile are pushed by the
   * same run but not waited for (a client that keeps writing would never get past this), and an
   * answer is never waited for forever while pulls and live changes could apply; what the run
   * does after this resolved is reported when it ends.
   */
  async untilPushedOrLate(): Promise<PushReport | null> {
    const round = this.rounds + 1
    const run = this.run()
    const pushed = new Promise<PushReport>((done) => this.roundWaiters.push({ round, done }))
    const first = await Promise.race([run, pushed, this.late.then(() => null)])
    if (this.current === run && !this.endWatched) {
      this.endWatched = true
      this.reportWhenDone(run, first?.rejected.length ?? 0)
    }
    return first
  }

  /** The trigger: pushes soon, and reports how a run it started ends. */
  private request(): void {
    if (!this.hooks.online()) return
    const starts = this.current === null
    const run = this.run()
    if (starts) {
      this.endWatched = true
      this.reportWhenDone(run, 0)
    }
  }

  private run(): Promise<PushReport> {
    if (this.current) {
      this.again = true
      return this.current
    }
    this.armLate()
    this.endWatched = false
    this.current = (async () => {
      const total: PushReport = { answered: 0, rejected: [] }
      try {
        do {
          this.again = false
          const round = ++this.rounds
          await this.drain(total)
          this.roundEnded(round, total)
        } while (this.again && this.hooks.online())
        return total
      } finally {
        // Waiters for a round that never came see the run's end (its report or its error).
        this.roundWaiters = []
        this.current = null
        this.lateError = null
        this.endedSinceCount = true
        this.hooks.runningChanged()
      }
    })()
    // After the assignment: `running` reads `current` (the body above always awaits first).
    this.hooks.runningChanged()
    return this.current
  }

  /**
   * One round: pushes batches until one was not full, or until it pushed the newest entry
   * queued when its first full batch was read (then the run goes on with another round).
   */
  private async drain(total: PushReport): Promise<void> {
    let frontier: number | undefined
    for (;;) {
      const step = await this.lock.withLock(PUSH_LOCK, () => pushBatch(this.deps, this.pacer, this.lateHooks))
      if (!step) return
      total.answered += step.answered
      total.rejected.push(...step.followUp.errors)
      if (step.followUp.refresh.length) await refreshRecords(this.deps, step.followUp.refresh)
      if (step.answered === 0) {
        throw new TidesyncClientError(
          'INTERNAL',
          'The server answered a push without an outcome for any change',
        )
      }
      if (!step.full) return
      frontier ??= ((await this.deps.ctx.db.outbox.orderBy('seq').lastKey()) as number | undefined) ?? 0
      if (step.lastSeq >= frontier) {
        this.again = true
        return
      }
    }
  }

  /** Resolves the waiters for `round` (and earlier ones) with the run's report so far. */
  private roundEnded(round: number, total: PushReport): void {
    const ready = this.roundWaiters.filter((waiter) => waiter.round <= round)
    if (ready.length === 0) return
    this.roundWaiters = this.roundWaiters.filter((waiter) => waiter.round > round)
    for (const { done } of ready) done({ answered: total.answered, rejected: [...total.rejected] })
  }

  /** Reports how `run` ends: its failure, or the last of its rejections from number `from` on. */
  private reportWhenDone(run: Promise<PushReport>, from: number): void {
    run.then(
      (report) => {
        const rejected = report.rejected.slice(from)
        if (rejected.length) this.hooks.report(rejected.at(-1)!)
        else this.hooks.succeeded()
      },
      (error) => this.hooks.failed(toClientError(error)),
    )
  }

  private armLate(): void {
    this.lateError = null
    this.late = new Promise<void>((resolve) => {
      this.markLate = resolve
    })
  }
}
