import type { ChangesPush, WireError } from '@tidesync/protocol'
import { Subject } from 'rxjs'
import { type ClientContext, findModel } from '../context.js'
import type { CrossTabLock } from '../db/lock.js'
import {
  TidesyncClientError,
  type TidesyncPushTimeoutError,
  TidesyncServerError,
  toClientError,
} from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import type { StatusStore } from '../status.js'
import type { NormalizedWhere } from '../where.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import type { SyncDeps } from './deps.js'
import { buildMetadata, fullSync } from './full-sync.js'
import { saveLastSyncedAt } from './last-synced.js'
import { LiveInbox } from './live-inbox.js'
import { pullSubset } from './pull.js'
import { type PushReport, pushOutbox } from './push.js'
import { PushPacer } from './push-pacer.js'
import { SerialQueue } from './serial-queue.js'
import { type Subset, SubsetRegistry } from './subsets.js'
import { connectSocket, type TidesyncSocket, Transport } from './transport.js'

/** The checkpoint of "nothing known yet": the server answers with a paged initial load. */
const INITIAL_CHECKPOINT = '0'

function isServerError(error: unknown, ...codes: string[]): error is TidesyncServerError {
  return error instanceof TidesyncServerError && codes.includes(error.code)
}

/** @internal */
export interface SyncEngineOptions {
  socket: TidesyncSocket
  /** The engine made the socket (and closes it); otherwise the app owns it. */
  ownsSocket: boolean
  requestTimeoutMs: number
  pageSize: number
  pushBatchSize: number
  pushTimeoutPerChangeMs: number
  retry: BackoffOptions
  /** Connect at start. */
  online: boolean
}

/**
 * The sync engine. On every (re)connect it runs a cycle: push the outbox, then per active
 * subset subscribe to live changes and sync (delta pull from the checkpoint, or a full
 * reconcile when there is none or the server no longer accepts it). A push still unanswered after
 * its timeout stays open without holding the cycle up (see `pushOutbox`). Live changes apply as
 * they come. Failures are reported on `status$`/`errors$` and retried with backoff; nothing is
 * thrown into the void.
 * @internal
 */
export class SyncEngine {
  readonly subsets = new SubsetRegistry()
  readonly errors$ = new Subject<TidesyncClientError>()
  private readonly deps: SyncDeps
  private readonly socket: TidesyncSocket
  private readonly backoff: Backoff
  private enabled: boolean
  private closed = false
  private cycle: Promise<boolean> | null = null
  private cycleRequested = false
  private pushRunning: Promise<PushReport> | null = null
  private pushAgain = false
  /** Resolves once the running push outlived its timeout (it stays open; see `pushOutbox`). */
  private pushLate: Promise<void> = Promise.resolve()
  private markPushLate: () => void = () => {}
  /** The last push timeout: shown in `status.error` while that push is still open. */
  private lateError: TidesyncPushTimeoutError | null = null
  /** Whether a cycle that went on without the running (late) push watches how it ends. */
  private pushWatched = false
  private retryTimer: unknown = null
  private readonly detach: Array<() => void> = []
  private readonly inbox: LiveInbox

  constructor(
    private readonly ctx: ClientContext,
    lock: CrossTabLock,
    private readonly status: StatusStore,
    private readonly options: SyncEngineOptions,
  ) {
    this.socket = options.socket
    this.enabled = options.online
    this.backoff = new Backoff(options.retry)
    this.deps = {
      ctx,
      transport: new Transport(this.socket, ctx.timers, options.requestTimeoutMs),
      queue: new SerialQueue(),
      lock,
      status,
      subsets: this.subsets,
      pageSize: options.pageSize,
      pacer: new PushPacer({
        maxBatch: options.pushBatchSize,
        baseTimeoutMs: options.requestTimeoutMs,
        perChangeMs: options.pushTimeoutPerChangeMs,
      }),
      onPushTimeout: (error) => this.onPushTimeout(error),
      onLatePushAnswered: () => this.onLatePushAnswered(),
    }
    this.inbox = new LiveInbox(this.deps, (error) => this.report(toClientError(error)))
  }

  /** Attaches to the socket and connects when online. */
  start(): void {
    const on = <E extends string>(event: E, handler: (...args: never[]) => void) => {
      const socket = this.socket as unknown as {
        on(e: string, h: (...a: never[]) => void): void
        off(e: string, h: (...a: never[]) => void): void
      }
      socket.on(event, handler)
      this.detach.push(() => socket.off(event, handler))
    }
    on('connect', () => this.onConnect())
    on('disconnect', () => this.onDisconnect())
    on('connect_error', (error: Error) => this.onConnectError(error))
    on('changes', (push: ChangesPush) => this.onChanges(push))
    on('tidesync:error', (error: WireError) =>
      this.report(new TidesyncServerError(error.code, error.message, error.retryable ?? false, 'connection')),
    )
    if (this.socket.connected) this.onConnect()
    else if (this.enabled) connectSocket(this.socket)
  }

  get online(): boolean {
    return this.enabled && this.socket.connected
  }

  /** Connects (again) and syncs. */
  goOnline(): void {
    if (this.closed) return
    this.enabled = true
    if (this.socket.connected) this.onConnect()
    else connectSocket(this.socket)
  }

  /** Disconnects and stays offline until `goOnline()`; local writes keep queueing. */
  goOffline(): void {
    this.enabled = false
    this.clearRetry()
    this.socket.disconnect()
    this.status.patch({ online: false, syncing: false, progress: null })
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

  /** Pushes the outbox soon (after a local write). */
  requestPush(): void {
    if (!this.online) return
    this.reportWhenDone(this.push())
  }

  /** Reports how a push run ends that nobody else waits for. */
  private reportWhenDone(run: Promise<PushReport>): void {
    run.then(
      (report) => {
        if (report.rejected.length) this.report(report.rejected.at(-1)!)
        else if (!this.cycle) this.status.patch({ error: null })
      },
      (error) => {
        this.report(toClientError(error))
        this.scheduleRetry()
      },
    )
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
    this.closed = true
    this.enabled = false
    this.clearRetry()
    for (const detach of this.detach.splice(0)) detach()
    // Also ends a push kept open after its timeout when the app owns (and keeps) the socket.
    this.deps.transport.abort(new TidesyncClientError('CLIENT_CLOSED', 'The client was closed'))
    if (this.options.ownsSocket) this.socket.disconnect()
    this.errors$.complete()
  }

  private push(): Promise<PushReport> {
    if (this.pushRunning) {
      this.pushAgain = true
      return this.pushRunning
    }
    this.armPushLate()
    this.pushWatched = false
    this.pushRunning = (async () => {
      const total: PushReport = { answered: 0, rejected: [] }
      try {
        do {
          this.pushAgain = false
          const report = await pushOutbox(this.deps)
          total.answered += report.answered
          total.rejected.push(...report.rejected)
        } while (this.pushAgain && this.online)
        return total
      } finally {
        this.pushRunning = null
        this.lateError = null
        this.updateSyncing()
      }
    })()
    // After the assignment: `syncing` reads `pushRunning` (the body above always awaits first).
    this.updateSyncing()
    return this.pushRunning
  }

  /**
   * The running push, until it is done or outlived its timeout. `null`: it is late and still
   * open; the cycle goes on without it (a push answer is never waited for forever while pulls and
   * live changes could apply) and its end is reported when it comes.
   */
  private async pushUnlessLate(): Promise<PushReport | null> {
    const run = this.push()
    const first = await Promise.race([run, this.pushLate.then(() => null)])
    if (first === null && !this.pushWatched) {
      this.pushWatched = true
      this.reportWhenDone(run)
    }
    return first
  }

  /** A push outlived its timeout: report it (once per batch); the push stays open. */
  private onPushTimeout(error: TidesyncPushTimeoutError): void {
    if (this.pushRunning) this.lateError = error
    this.markPushLate()
    this.report(error)
  }

  /** The late push got its answer (applied): the push run goes on as a timely one. */
  private onLatePushAnswered(): void {
    const shown = this.lateError
    this.armPushLate()
    if (shown && this.status.value.error === shown) this.status.patch({ error: null })
  }

  private armPushLate(): void {
    this.lateError = null
    this.pushLate = new Promise<void>((resolve) => {
      this.markPushLate = resolve
    })
  }

  private onConnect(): void {
    if (this.closed) return
    if (!this.enabled) {
      this.socket.disconnect()
      return
    }
    this.subsets.resetConnection()
    this.status.patch({ online: true })
    this.requestCycle()
  }

  private onDisconnect(): void {
    this.subsets.resetConnection()
    this.status.patch({ online: false, progress: null })
  }

  private onConnectError(error: Error): void {
    const data = (error as Error & { data?: { code?: string } }).data
    const unauthorized = data?.code === 'UNAUTHORIZED' || /unauthori[sz]ed/i.test(error.message)
    const code = unauthorized ? 'UNAUTHORIZED' : 'CLIENT_OFFLINE'
    this.ctx.logger.debug(`connect failed: ${error.message}`)
    if (unauthorized || this.status.value.error?.code !== code) {
      this.report(new TidesyncClientError(code, `Cannot connect: ${error.message}`, { cause: error }))
    }
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

  /** One cycle; resolves with whether it ran to its end (false: failed or cut short offline). */
  private async cycleOnce(): Promise<boolean> {
    if (!this.online) return false
    const errors: TidesyncClientError[] = []
    let failed = false
    let pushOpen = false
    try {
      const report = await this.pushUnlessLate()
      if (report) errors.push(...report.rejected)
      else pushOpen = true
    } catch (error) {
      this.report(toClientError(error))
      this.scheduleRetry()
      return false
    }
    for (const subset of this.subsets.all()) {
      if (!subset.needsSync || !this.online) continue
      try {
        await this.syncSubset(subset)
      } catch (error) {
        const clientError = toClientError(error)
        errors.push(clientError)
        failed = true
        this.errors$.next(clientError)
      }
    }
    if (!this.online) return false
    if (failed) this.scheduleRetry()
    else if (!pushOpen) {
      this.backoff.reset()
      const syncedAt = new Date(this.ctx.clock.now())
      this.status.patch({ lastSyncedAt: syncedAt })
      // Kept in the local database, so that the next start shows it before any sync.
      await saveLastSyncedAt(this.ctx, syncedAt)
    }
    for (const error of errors)
      if (error instanceof TidesyncServerError && error.operation === 'sync:push') this.errors$.next(error)
    // A push still open after its timeout stays in `status.error` (and `syncing`) until it ends.
    const lateError = pushOpen ? this.lateError : null
    this.status.patch({ error: errors.at(-1) ?? lateError ?? null, progress: null })
    return true
  }

  private async syncSubset(subset: Subset): Promise<void> {
    subset.needsSync = false
    this.subsets.patchState(subset, { syncing: true })
    try {
      if (!subset.subscriptionId) {
        const { subscriptionId } = await this.deps.transport.request('subscribe', {
          model: subset.model.name,
          where: subset.where.wire,
        })
        if (this.subsets.isActive(subset)) this.subsets.bindSubscription(subset, subscriptionId)
        else {
          this.deps.transport.request('unsubscribe', { subscriptionId }).catch(() => {})
          return
        }
      }
      const stored = await this.ctx.db.checkpoints.get(subset.key)
      if (stored?.checkpoint) {
        try {
          await pullSubset(this.deps, subset, stored.checkpoint)
        } catch (error) {
          // CHECKPOINT_EXPIRED: pruned on the server. BAD_REQUEST: the stored checkpoint is damaged.
          if (!isServerError(error, 'CHECKPOINT_EXPIRED', 'BAD_REQUEST')) throw error
          this.ctx.logger.debug(
            `checkpoint of ${subset.key} refused (${error.code}): full reconcile`,
          )
          await this.ctx.db.checkpoints.delete(subset.key)
          await fullSync(this.deps, subset)
        }
      } else if (Object.keys(await buildMetadata(this.ctx, subset)).length === 0) {
        // Nothing local to reconcile: the initial load streams in pages (checkpoint "0"), with progress.
        try {
          await pullSubset(this.deps, subset, INITIAL_CHECKPOINT)
        } catch (error) {
          if (!isServerError(error, 'BAD_REQUEST', 'CHECKPOINT_EXPIRED')) throw error
          await fullSync(this.deps, subset)
        }
      } else await fullSync(this.deps, subset)
      this.subsets.patchState(subset, { syncing: false, synced: true, error: null })
    } catch (error) {
      subset.needsSync = true
      this.subsets.patchState(subset, { syncing: false, error: toClientError(error) })
      throw error
    }
  }

  private onChanges(push: ChangesPush): void {
    const subset = this.subsets.bySubscriptionId(push.subscriptionId)
    const model = subset?.model ?? findModel(this.ctx.models, push.model)
    if (!model) return
    this.ctx.hlc.observe(push.serverClock)
    this.inbox.add({ push, model, subset })
  }

  private updateSyncing(): void {
    this.status.patch({ syncing: this.cycle !== null || this.pushRunning !== null })
  }

  private report(error: TidesyncClientError): void {
    this.ctx.logger.debug(`${error.code}: ${error.message}`)
    this.status.patch({ error })
    this.errors$.next(error)
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.closed || !this.enabled) return
    const delay = this.backoff.next()
    this.retryTimer = this.ctx.timers.setTimeout(() => {
      this.retryTimer = null
      if (!this.online) return
      for (const subset of this.subsets.all()) subset.needsSync ||= subset.state$.value.error !== null
      this.requestCycle()
    }, delay)
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) this.ctx.timers.clearTimeout(this.retryTimer)
    this.retryTimer = null
  }
}
