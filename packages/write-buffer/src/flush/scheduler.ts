import { asFlushError, WriteBufferError } from '../errors.js'
import type { LockedWorkContext } from '../store/locked-work.js'
import type { TableMeta } from '../store/table-meta.js'
import type { AnyPgDatabase, FlushReport } from '../types.js'
import { type FlushContext, flushTable } from './flusher.js'
import type { InsertMethod } from './inserts.js'
import type { Executor } from './sql-util.js'

/** One registered table and its flush state in this process. */
export interface FlushEntry {
  meta: TableMeta
  db: AnyPgDatabase
  /** The table's flushes run one after another in this process. */
  chain: Promise<unknown>
  busy: number
  failures: number
  nextAttemptAt: number
  lastPruneAt: number
}

/** What the scheduler needs from the buffer. */
export interface SchedulerContext extends LockedWorkContext {
  flushInterval: number
  maxBackoffMs: number
  orphanRetries: number
  ledgerRetentionMs: number
  insertMethod: InsertMethod
  /** Whether `close()` began (no background flush is started then). */
  isClosing: () => boolean
  /** Keeps a background flush among the work `close()` waits for. */
  track: (work: Promise<unknown>) => void
  /** Reports a background failure (onError, 'error' event or the logger). */
  report: (error: WriteBufferError) => void
  /** Called as a table's flush is queued (the journal notes it; queued inserts count from 0). */
  onFlushStart: (table: string) => void
  /** Called after a commit with the journal watermarks it covered. */
  onCommitted: (table: string, watermarks: Map<string, number>) => void
  /** Called with each flush that applied something ('flush' event). */
  onFlushed: (report: FlushReport) => void
  /** Called after a flush of every table succeeded (replaces the checkpoint). */
  afterFlushAll: () => Promise<void>
}

/** How long a ledger prune waits after the last one, per table. */
const PRUNE_EVERY_MS = 3_600_000

/**
 * When tables flush: one flush at a time per table in this process, on request (explicit,
 * `maxQueueSize` reached, the timer) and with exponential back-off after failures.
 */
export class FlushScheduler {
  private readonly entries = new Map<string, FlushEntry>()
  private readonly flushContext: FlushContext

  constructor(private readonly ctx: SchedulerContext) {
    this.flushContext = {
      ipc: ctx.ipc,
      keys: ctx.keys,
      logger: ctx.logger,
      now: ctx.now,
      lockTtlSeconds: ctx.lockTtlSeconds,
      lockWaitMs: ctx.lockWaitMs,
      orphanRetries: ctx.orphanRetries,
      ledgerRetentionMs: ctx.ledgerRetentionMs,
      insertMethod: ctx.insertMethod,
      report: ctx.report,
      onCommitted: ctx.onCommitted,
      shouldPrune: (table) => {
        const entry = this.entries.get(table)
        if (!entry || ctx.now() - entry.lastPruneAt < PRUNE_EVERY_MS) return false
        entry.lastPruneAt = ctx.now()
        return true
      },
    }
  }

  get(table: string): FlushEntry | undefined {
    return this.entries.get(table)
  }

  /** Every registered table, in registration order. */
  all(): IterableIterator<FlushEntry> {
    return this.entries.values()
  }

  add(meta: TableMeta, db: AnyPgDatabase): FlushEntry {
    const entry: FlushEntry = {
      meta,
      db,
      chain: Promise.resolve(),
      busy: 0,
      failures: 0,
      nextAttemptAt: 0,
      lastPruneAt: this.ctx.now(),
    }
    this.entries.set(meta.id, entry)
    return entry
  }

  /** The table's entry; WB_INVALID_OPTION when it is not registered. */
  entryOf(meta: TableMeta): FlushEntry {
    const entry = this.entries.get(meta.id)
    if (!entry) throw new WriteBufferError('WB_INVALID_OPTION', `Table ${meta.id} is not registered.`)
    return entry
  }

  /** Flushes every table; rejects with the first failure once all were tried. */
  async flushAll(): Promise<FlushReport[]> {
    const reports: FlushReport[] = []
    let failure: unknown
    for (const entry of this.entries.values()) {
      try {
        reports.push(await this.flush(entry, true))
      } catch (error) {
        failure ??= error
      }
    }
    if (failure) throw failure
    await this.ctx.afterFlushAll()
    return reports
  }

  /**
   * Flushes one table after its running flush. A failure pushes the next background attempt
   * back (doubling, up to maxBackoffMs); unless `explicit`, it is also reported.
   */
  flush(entry: FlushEntry, explicit: boolean): Promise<FlushReport> {
    const { ctx } = this
    entry.busy++
    ctx.onFlushStart(entry.meta.id)
    const run = entry.chain.then(
      () => flushTable(this.flushContext, entry.meta, entry.db as unknown as Executor),
      () => flushTable(this.flushContext, entry.meta, entry.db as unknown as Executor),
    )
    entry.chain = run.catch(() => undefined)
    return run.then(
      (report) => {
        entry.busy--
        entry.failures = 0
        entry.nextAttemptAt = 0
        if (report.batches.length > 0) ctx.onFlushed(report)
        return report
      },
      (error: unknown) => {
        entry.busy--
        entry.failures++
        const pause = Math.min(ctx.flushInterval * 2 ** (entry.failures - 1), ctx.maxBackoffMs)
        entry.nextAttemptAt = ctx.now() + pause
        const wrapped = asFlushError(error, entry.meta.id)
        if (!explicit) ctx.report(wrapped)
        throw wrapped
      },
    )
  }

  /** The timer's flush: every idle table with pending or in-flight state, past its back-off. */
  async background(): Promise<void> {
    const { ctx } = this
    if (ctx.isClosing()) return
    for (const entry of this.entries.values()) {
      if (entry.busy > 0 || ctx.now() < entry.nextAttemptAt) continue
      const [pending, inflight] = await Promise.all([
        ctx.ipc.keys(ctx.keys.pendingPrefix(entry.meta.id)),
        ctx.ipc.keys(ctx.keys.inflightPrefix(entry.meta.id)),
      ]).catch(() => [[1], [1]])
      if (pending.length === 0 && inflight.length === 0) continue
      await this.flush(entry, false).catch(() => undefined)
    }
  }

  /** Starts a background flush of the table unless one runs or it is backing off. */
  request(entry: FlushEntry): void {
    if (entry.busy > 0 || this.ctx.now() < entry.nextAttemptAt || this.ctx.isClosing()) return
    this.ctx.track(this.flush(entry, false).catch(() => undefined))
  }
}
