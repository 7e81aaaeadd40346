import type { ChangesPush } from '@tidesync/protocol'
import { Subject } from 'rxjs'
import { type ClientContext, modelByWireName } from '../context.js'
import type { CrossTabLock } from '../db/lock.js'
import { SerialQueue } from '../db/serial-queue.js'
import { TidesyncClientError, toClientError } from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import type { StatusStore } from '../status.js'
import type { NormalizedWhere } from '../where.js'
import { Connection, type ConnectionOptions } from './connection.js'
import type { SyncDeps } from './deps.js'
import { OwnRevisions } from './echoes.js'
import { saveLastSyncedAt } from './last-synced.js'
import { LiveInbox } from './live-inbox.js'
import { PushLoop, type PushReport } from './push-loop.js'
import { syncSubsets } from './subset-sync.js'
import { type Subset, SubsetRegistry } from './subsets.js'

/** @internal */
export interface SyncEngineOptions extends ConnectionOptions {
  pageSize: number
  firstPageSize: number
  pushBatchSize: number
  pushTimeoutPerChangeMs: number
}

/**
 * The sync engine: connects its parts and runs the sync cycle. The parts: `Connection` (online,
 * backoff, requests), `PushLoop` (when the outbox goes out: every local write on its own, and
 * first thing in a cycle), `syncSubset` (pull, initial load or full reconcile of one subset) and
 * `LiveInbox` (live changes, applied as they come). On every (re)connect a cycle pushes, then
 * syncs each subset that needs it. Failures are reported on `status$`/`errors$` and retried with
 * backoff; nothing is thrown into the void.
 * @internal
 */
export class SyncEngine {
  readonly subsets = new SubsetRegistry()
  readonly errors$ = new Subject<TidesyncClientError>()
  private readonly deps: SyncDeps
  private readonly connection: Connection
  private readonly pushes: PushLoop
  private readonly inbox: LiveInbox
  private cycle: Promise<boolean> | null = null
  private cycleRequested = false

  constructor(
    private readonly ctx: ClientContext,
    lock: CrossTabLock,
    private readonly status: StatusStore,
    options: SyncEngineOptions,
  ) {
    const report = (error: TidesyncClientError) => this.report(error)
    this.connection = new Connection(ctx, status, options, {
      connected: () => {
        this.subsets.resetConnection()
        this.requestCycle()
      },
      disconnected: () => this.subsets.resetConnection(),
      changes: (push) => this.onChanges(push),
      retry: () => {
        this.subsets.retryFailed()
        this.requestCycle()
      },
      report,
    })
    const { transport } = this.connection
    const { pageSize, firstPageSize, pushBatchSize, requestTimeoutMs, pushTimeoutPerChangeMs } = options
    const queue = new SerialQueue()
    this.deps = {
      ctx,
      transport,
      queue,
      status,
      subsets: this.subsets,
      pageSize,
      firstPageSize: Math.min(firstPageSize, pageSize),
      ownRevisions: new OwnRevisions(),
      wire: { pullFormat: 'columns' },
    }
    const pacing = {
      maxBatch: pushBatchSize,
      baseTimeoutMs: requestTimeoutMs,
      perChangeMs: pushTimeoutPerChangeMs,
    }
    this.pushes = new PushLoop(this.deps, lock, pacing, {
      online: () => this.online,
      runningChanged: () => this.updateSyncing(),
      report,
      succeeded: () => {
        if (!this.cycle) status.patch({ error: null })
      },
      failed: (error) => {
        this.report(error)
        this.connection.scheduleRetry()
      },
    })
    this.inbox = new LiveInbox(this.deps, (error) => this.report(toClientError(error)))
  }

  /** Starts watching the outbox and connects when online. */
  start(): void {
    this.pushes.start()
    this.connection.start()
  }

  get online(): boolean {
    return this.connection.online
  }

  /** Connects (again) and syncs. */
  goOnline(): void {
    this.connection.goOnline()
  }

  /** Disconnects and stays offline until `goOnline()`; local writes keep queueing. */
  goOffline(): void {
    this.connection.goOffline()
  }

  /** Keeps a subset in sync while the returned release function has not been called. */
  addSubset(model: ModelInfo, where: NormalizedWhere): { subset: Subset; release: () => void } {
    const { subset, created } = this.subsets.acquire(model, where)
    if (created && this.online) this.requestCycle()
    let released = false
    const release = () => {
      if (released) return
      released = true
      const subscriptionId = subset.subscriptionId
      if (this.subsets.release(subset) && subscriptionId && this.online) {
        this.deps.transport.request('unsubscribe', { subscriptionId }).catch(() => {})
      }
    }
    return { subset, release }
  }

  /**
   * Runs a full cycle now and resolves when it finished (or rejects with its error). For apps
   * and tests that want to wait for "everything synced": it never resolves when the cycle was cut
   * short, so a connection lost on the way (or `goOffline()`) rejects it with `CLIENT_OFFLINE`.
   */
  async syncNow(): Promise<void> {
    if (!this.online) throw new TidesyncClientError('CLIENT_OFFLINE', 'Cannot sync: offline')
    for (const subset of this.subsets.all()) subset.needsSync = true
    const complete = await this.runCycle()
    const error = this.status.value.error
    if (error) throw error
    if (!complete) {
      throw new TidesyncClientError(
        'CLIENT_OFFLINE',
        'Cannot sync: the connection was lost (or the client went offline) before the sync finished',
      )
    }
  }

  close(): void {
    this.pushes.stop()
    this.connection.close()
    this.errors$.complete()
  }

  private requestCycle(): void {
    this.runCycle().catch((error) => this.report(toClientError(error)))
  }

  /**
   * Runs a cycle; a request during a running cycle makes it run once more (same promise). Resolves
   * with whether the last cycle ran to its end and no requested one was left out (the connection
   * was lost).
   */
  private runCycle(): Promise<boolean> {
    if (this.cycle) {
      this.cycleRequested = true
      return this.cycle
    }
    this.cycle = (async () => {
      try {
        let complete: boolean
        do {
          this.cycleRequested = false
          complete = await this.cycleOnce()
        } while (this.cycleRequested && this.online)
        return complete && !this.cycleRequested
      } finally {
        this.cycle = null
        this.updateSyncing()
      }
    })()
    // After the assignment: `syncing` reads `cycle` (the body above always awaits first).
    this.updateSyncing()
    return this.cycle
  }

  /**
   * One cycle: push what is queued now, then sync the subsets. Only the entries queued when the
   * cycle began are waited for (writes that keep coming go on being pushed meanwhile; the serial
   * queue and the merge keep a pull from overwriting a pending local change), and a push still
   * open after its timeout is not waited for. Resolves with whether it ran to its end (false: the
   * push failed, or cut short offline).
   */
  private async cycleOnce(): Promise<boolean> {
    if (!this.online) return false
    let pushed: PushReport | null
    try {
      pushed = await this.pushes.untilPushedOrLate()
    } catch (error) {
      this.report(toClientError(error))
      this.connection.scheduleRetry()
      return false
    }
    const pushQueued = () => this.pushes.untilPushedOrLate()
    const failures = await syncSubsets(
      this.deps,
      () => this.online,
      pushQueued,
      (e) => this.errors$.next(e),
    )
    if (!this.online) return false
    if (failures.length > 0) this.connection.scheduleRetry()
    else if (pushed) {
      this.connection.resetBackoff()
      const syncedAt = new Date(this.ctx.clock.now())
      this.status.patch({ lastSyncedAt: syncedAt })
      // Kept in the local database, so that the next start shows it before any sync.
      await saveLastSyncedAt(this.ctx, syncedAt)
    }
    const rejected = pushed?.rejected ?? []
    for (const error of rejected) this.errors$.next(error)
    // A push still open after its timeout stays in `status.error` (and `syncing`) until it ends.
    const error = failures.at(-1) ?? rejected.at(-1) ?? (pushed ? null : this.pushes.openTimeout)
    this.status.patch({ error, progress: null })
    return true
  }

  private onChanges(push: ChangesPush): void {
    const subset = this.subsets.bySubscriptionId(push.subscriptionId)
    const model = subset?.model ?? modelByWireName(this.ctx.models, push.model)
    if (!model) return
    this.ctx.hlc.observe(push.serverClock)
    this.inbox.add({ push, model, subset })
  }

  private updateSyncing(): void {
    this.status.patch({ syncing: this.cycle !== null || this.pushes.running })
  }

  private report(error: TidesyncClientError): void {
    this.ctx.logger.debug(`${error.code}: ${error.message}`)
    this.status.patch({ error })
    this.errors$.next(error)
  }
}
