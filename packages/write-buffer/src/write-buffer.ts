import { EventEmitter } from 'node:events'
import type { Ipc, Json } from '@tidesync/ipc'
import type { PgTable } from 'drizzle-orm/pg-core'
import {
  type CheckpointContext,
  CheckpointStore,
  restoreCheckpoint,
  takeCheckpoint,
} from './checkpoint/checkpoint.js'
import { Journal } from './checkpoint/journal.js'
import { type EnvFile, openEnv, releaseEnv } from './checkpoint/lmdb-env.js'
import { WriteBufferError } from './errors.js'
import { appliedReceipts, ensureSchema, readWatermarks } from './flush/batch-ledger.js'
import { type FlushContext, flushTable } from './flush/flusher.js'
import { parseReceiptField, receiptField } from './flush/plan.js'
import type { Executor } from './flush/sql-util.js'
import { GroupCommit } from './group-commit.js'
import { guardPgPool } from './guard-pg-pool.js'
import { connectionOf, KeyLayout, newBatchId } from './keys.js'
import type { LockedWorkContext } from './locked-work.js'
import { defaultLogger } from './logger.js'
import { BaseCache } from './read/base-cache.js'
import { readValue } from './read/read-value.js'
import { ensureEpoch, type RecoveryContext, replayJournal, restoreOpenOrphans } from './recovery.js'
import { handleShutdownSignals } from './signals.js'
import { type RedeliveryReport, TableBuffer, type TableSink } from './table-buffer.js'
import { type EncodedKey, rowField, rowId, TableMeta } from './table-meta.js'
import { TurnBudget } from './turn-budget.js'
import type {
  AnyPgDatabase,
  CheckpointReport,
  FlushReport,
  Logger,
  TableRegistration,
  WriteBufferEvents,
  WriteBufferOptions,
} from './types.js'

/**
 * Every this many calls (writes and reads), the calls wait for the next event-loop turn: a loop
 * of awaited calls on the memory driver then lets timers, I/O and signal handlers run.
 */
const CALLS_PER_TURN = 1000

/** The durability in effect: 'none' on Redis (the store is durable) or without a checkpoint path. */
export type EffectiveDurability = 'checkpoint' | 'journal' | 'none'

interface TableEntry {
  meta: TableMeta
  handle: TableBuffer<PgTable>
  db: AnyPgDatabase
  chain: Promise<unknown>
  busy: number
  failures: number
  nextAttemptAt: number
  lastPruneAt: number
}

/**
 * A write-behind buffer over drizzle tables, with all pending state in an IPC store.
 * Create it with {@link createWriteBuffer} (or {@link openWriteBuffer}, which waits for `ready`).
 */
export class WriteBuffer extends EventEmitter<WriteBufferEvents> {
  /** Resolves once start-up recovery (checkpoint or journal, then a flush) is done. */
  readonly ready: Promise<void>
  readonly durability: EffectiveDurability
  readonly keys: KeyLayout
  private readonly ipc: Ipc
  private readonly logger: Logger
  private readonly now: () => number
  private readonly settings: Required<
    Pick<
      WriteBufferOptions,
      | 'flushInterval'
      | 'checkpointInterval'
      | 'maxQueueSize'
      | 'lockWaitMs'
      | 'lockTtlSeconds'
      | 'getCacheTtl'
      | 'readWaitMs'
      | 'orphanRetries'
      | 'ledgerRetentionMs'
      | 'maxBackoffMs'
    >
  >
  private readonly tables = new Map<string, TableEntry>()
  private readonly cache: BaseCache
  private readonly sink: TableSink
  private readonly instance: string
  private readonly checkpointPath: string | false
  private readonly journalFsync: 'always' | number
  private epoch = ''
  private started = false
  private checkpointStore: CheckpointStore | undefined
  private journal: Journal | undefined
  /** The LMDB file this buffer opened (released at close), if any. */
  private envFile: EnvFile | undefined
  private timers: NodeJS.Timeout[] = []
  private removeSignals: (() => void) | undefined
  private closing: Promise<void> | undefined
  /** A shutdown signal started the close (the process ends after the final flush). */
  private signalled = false
  private readonly turns = new TurnBudget(CALLS_PER_TURN)
  private readonly work = new Set<Promise<unknown>>()
  /** Inserts of one table and turn go to the IPC store as one list item: the JSON text of the rows. */
  private readonly inserts = new GroupCommit<Record<string, Json>>((table, rows, previous) =>
    previous.then(async () => {
      await this.ipc.rpush(this.keys.pending(table, 'ins'), JSON.stringify(rows))
    }),
  )

  constructor(private readonly options: WriteBufferOptions) {
    super()
    if (!options?.ipc) throw new WriteBufferError('WB_INVALID_OPTION', 'createWriteBuffer() needs { ipc }.')
    if (!options.databases?.default) {
      throw new WriteBufferError(
        'WB_INVALID_OPTION',
        'createWriteBuffer() needs { databases: { default: db } }.',
      )
    }
    this.ipc = options.ipc
    this.logger = options.logger ?? defaultLogger
    for (const db of Object.values(options.databases)) guardPgPool(db, this.logger)
    this.now = options.now ?? Date.now
    this.settings = {
      flushInterval: positive(options.flushInterval, 5000, 'flushInterval'),
      checkpointInterval: positive(options.checkpointInterval, 30_000, 'checkpointInterval'),
      maxQueueSize: positive(options.maxQueueSize, 10_000, 'maxQueueSize'),
      lockWaitMs: positive(options.lockWaitMs, 60_000, 'lockWaitMs'),
      lockTtlSeconds: positive(options.lockTtlSeconds, 30, 'lockTtlSeconds'),
      getCacheTtl: options.getCacheTtl ?? 5000,
      readWaitMs: positive(options.readWaitMs, 30_000, 'readWaitMs'),
      orphanRetries: options.orphanRetries ?? 5,
      ledgerRetentionMs: positive(options.ledgerRetentionMs, 7 * 24 * 3600 * 1000, 'ledgerRetentionMs'),
      maxBackoffMs: positive(options.maxBackoffMs, 60_000, 'maxBackoffMs'),
    }
    this.keys = new KeyLayout(options.keyPrefix ?? 'wb:')
    this.checkpointPath = options.checkpointPath ?? '.tidesync/write-buffer'
    const durability = options.durability ?? 'checkpoint'
    if (durability !== 'checkpoint' && durability !== 'journal') {
      throw new WriteBufferError('WB_INVALID_OPTION', `durability must be 'checkpoint' or 'journal'.`)
    }
    this.durability = this.ipc.driver === 'redis' || this.checkpointPath === false ? 'none' : durability
    this.journalFsync =
      options.journalFsync === 'always' ? 'always' : positive(options.journalFsync, 1000, 'journalFsync')
    this.cache = new BaseCache(this.settings.getCacheTtl, this.now)
    this.instance = newBatchId(this.now())
    this.sink = this.createSink()
    for (const registration of options.tables ?? []) this.register(registration)
    if (options.handleSignals ?? true)
      this.removeSignals = handleShutdownSignals(() => {
        this.signalled = true
        return this.close()
      }, this.logger)
    this.ready = this.start()
    this.ready.catch(() => undefined)
  }

  /**
   * The buffered face of a drizzle table.
   * @example
   * await buffer.table(posts).where(1).increment('views')
   * await buffer.table(events, { connection: 'analytics' }).insert({ type: 'click' })
   */
  table<T extends PgTable>(
    table: T,
    options: { connection?: string; primaryKey?: string | string[] } = {},
  ): TableBuffer<T> {
    return this.register({ table, ...options }).handle as unknown as TableBuffer<T>
  }

  /** Flushes every table on every connection; waits for locks; rejects with the first failure. */
  async flush(): Promise<FlushReport[]> {
    if (this.closing) return this.refused()
    await this.ready
    return this.flushAll()
  }

  /** Seals pending state and writes a checkpoint now (checkpoint durability only). */
  async checkpoint(): Promise<CheckpointReport | null> {
    if (this.closing) return this.refused()
    await this.ready
    return this.runCheckpoint()
  }

  /**
   * Stops the timers, waits for operations in progress, flushes everything, then releases the
   * LMDB environment. The IPC store and databases stay open (close them after this). When the
   * final flush fails, pending state is checkpointed (checkpoint durability) and the error is
   * thrown.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  get closed(): boolean {
    return this.closing !== undefined
  }

  // Start-up ---------------------------------------------------------------------------------

  private async start(): Promise<void> {
    try {
      for (const db of Object.values(this.options.databases)) await ensureSchema(db as unknown as Executor)
      if (this.durability !== 'none') {
        const recovery = this.recoveryContext()
        this.epoch = await ensureEpoch(recovery)
        const path = this.checkpointPath as string
        if (this.durability === 'checkpoint') {
          this.checkpointStore = new CheckpointStore(openEnv(path), this.keys.prefix)
          this.envFile = 'write-buffer.mdb'
          await restoreCheckpoint(this.checkpointContext(), this.checkpointStore)
        } else {
          const always = this.journalFsync === 'always'
          const env = openEnv(path, 'journal.mdb', always ? 'commit-flushed' : 'commit-only')
          this.envFile = 'journal.mdb'
          this.journal = new Journal(
            env,
            this.ipc,
            this.keys,
            this.instance,
            this.logger,
            always ? undefined : (this.journalFsync as number),
          )
          await this.journal.start(this.epoch, this.now())
          await replayJournal(recovery, this.journal, this.epoch)
        }
      }
      for (const entry of this.tables.values()) {
        await restoreOpenOrphans(this.recoveryContext(), entry.meta.id, entry.db as unknown as Executor)
      }
      this.started = true
      await this.flushAll()
      this.startTimers()
    } catch (error) {
      const wrapped =
        error instanceof WriteBufferError
          ? error
          : new WriteBufferError(
              'WB_FLUSH_FAILED',
              `Write buffer start-up failed: ${(error as Error).message}`,
              {
                cause: error,
              },
            )
      this.reportError(wrapped)
      throw wrapped
    }
  }

  private startTimers(): void {
    if (this.closing) return
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const timer = setInterval(() => this.track(fn()), ms)
      timer.unref()
      this.timers.push(timer)
    }
    every(this.settings.flushInterval, () => this.backgroundFlush())
    if (this.durability === 'checkpoint') {
      every(this.settings.checkpointInterval, () =>
        this.runCheckpoint().catch((error) => this.reportError(durabilityError('Checkpoint failed', error))),
      )
    }
    if (this.durability === 'journal') {
      every(this.settings.checkpointInterval, () =>
        this.trimJournal().catch((error) => this.reportError(durabilityError('Journal trim failed', error))),
      )
    }
  }

  // Tables -----------------------------------------------------------------------------------

  private register(registration: TableRegistration): TableEntry {
    const spec = isPgTable(registration) ? { table: registration } : registration
    const connection = spec.connection ?? 'default'
    const db = this.options.databases[connection]
    if (!db) {
      throw new WriteBufferError(
        'WB_INVALID_OPTION',
        `No database connection named "${connection}" was given.`,
      )
    }
    const meta = new TableMeta(spec.table, connection, spec.primaryKey, this.options.primaryKey ?? 'id')
    const existing = this.tables.get(meta.id)
    if (existing) return existing
    const entry: TableEntry = {
      meta,
      handle: new TableBuffer(meta, this.sink),
      db,
      chain: Promise.resolve(),
      busy: 0,
      failures: 0,
      nextAttemptAt: 0,
      lastPruneAt: this.now(),
    }
    this.tables.set(meta.id, entry)
    if (this.started) {
      // Registered after start-up: bring back what a previous life left for it, then flush it.
      this.track(
        (async () => {
          await restoreOpenOrphans(this.recoveryContext(), meta.id, db as unknown as Executor)
          if ((await this.ipc.keys(this.keys.inflightPrefix(meta.id))).length > 0)
            await this.flushEntry(entry, false)
        })().catch((error) => this.reportError(asFlushError(error, meta.id))),
      )
    }
    return entry
  }

  private createSink(): TableSink {
    const { ipc, keys } = this
    return {
      increment: (meta, key, column, delta, receipt) =>
        this.operation(meta, async () => {
          if (receipt !== undefined) {
            if (this.journal) return this.journal.append(meta.id, ['r', key, column, delta, receipt])
            // One field per receipt, set (not added): giving it again changes nothing.
            await ipc.hset(keys.pending(meta.id, 'rct'), { [receiptField(key, column, receipt)]: delta })
            return 0
          }
          if (this.journal) return this.journal.append(meta.id, ['i', key, column, delta])
          await ipc.hincrBy(keys.pending(meta.id, 'inc'), rowField(key, column), delta)
          return 0
        }),
      redeliver: async (meta, items) => {
        if (this.closing) return this.refused()
        await this.ready
        const entry = this.entryOf(meta)
        // Under the flush lock: no flush can record one of these receipts between the ledger
        // lookup and the hand-over, so none is counted by a read after it was applied.
        return this.ipc.withLock(
          keys.lock(meta.id),
          this.settings.lockTtlSeconds,
          async () => {
            const applied = await appliedReceipts(
              entry.db as unknown as Executor,
              meta.id,
              items.map((item) => item.receipt),
            )
            const report: RedeliveryReport = { delivered: [], alreadyApplied: [] }
            for (const item of items) {
              if (applied.has(item.receipt)) {
                report.alreadyApplied.push(item.receipt)
                continue
              }
              await this.sink.increment(meta, item.key, item.column, item.delta, item.receipt)
              report.delivered.push(item.receipt)
            }
            return report
          },
          { waitMs: this.settings.lockWaitMs },
        )
      },
      update: (meta, key, fields) =>
        this.operation(meta, async () => {
          if (this.journal) return this.journal.append(meta.id, ['u', key, fields])
          const entries = Object.entries(fields).map(([column, value]) => [rowField(key, column), value])
          // Last write wins: the pending increments of a column this update sets came before it,
          // so they go (a pending hash keeps a sum, not an order: left there they would be added
          // after the update). Increments that land after the hdel are added to the new value.
          const counted = Object.keys(fields).filter((column) => meta.column(column).numeric)
          if (counted.length > 0) {
            await ipc.hdel(keys.pending(meta.id, 'inc'), ...counted.map((column) => rowField(key, column)))
            const receipted = Object.keys(await ipc.hgetall(keys.pending(meta.id, 'rct'))).filter((field) => {
              const parsed = parseReceiptField(field)
              return parsed !== null && counted.includes(parsed.column) && rowId(parsed.key) === rowId(key)
            })
            if (receipted.length > 0) await ipc.hdel(keys.pending(meta.id, 'rct'), ...receipted)
          }
          await ipc.hset(keys.pending(meta.id, 'upd'), Object.fromEntries(entries) as Record<string, Json>)
          return 0
        }),
      insert: (meta, row) =>
        this.operation(meta, async () => {
          if (this.journal) return this.journal.append(meta.id, ['n', row])
          return this.inserts.append(meta.id, row)
        }),
      get: async (meta, key: EncodedKey, column) => {
        if (this.closing) return this.refused()
        await this.ready
        const entry = this.entryOf(meta)
        const value = await readValue(
          {
            ipc,
            keys,
            cache: this.cache,
            now: this.now,
            readWaitMs: this.settings.readWaitMs,
          },
          meta,
          entry.db,
          key,
          column,
        )
        const turn = this.turns.spend()
        if (turn) await turn
        return value
      },
      flush: async (meta) => {
        if (this.closing) return this.refused()
        await this.ready
        return this.flushEntry(this.entryOf(meta), true)
      },
    }
  }

  /**
   * Runs a write: refused once closed, waits for start-up, starts a flush past maxQueueSize
   * (`write` resolves with what this process queued for the table since its last flush of it;
   * 0 for the merged kinds, which do not grow with repeated writes). Every CALLS_PER_TURN
   * calls, the calls wait for the next event-loop turn before they resolve.
   */
  private async operation(meta: TableMeta, write: () => Promise<number>): Promise<void> {
    if (this.closing) return this.refused()
    const run = (async () => {
      await this.ready
      const length = await write()
      if (length >= this.settings.maxQueueSize) this.requestFlush(this.entryOf(meta))
    })()
    this.work.add(run)
    try {
      await run
    } finally {
      this.work.delete(run)
    }
    const turn = this.turns.spend()
    if (turn) await turn
  }

  private entryOf(meta: TableMeta): TableEntry {
    const entry = this.tables.get(meta.id)
    if (!entry) throw new WriteBufferError('WB_INVALID_OPTION', `Table ${meta.id} is not registered.`)
    return entry
  }

  // Flushing ---------------------------------------------------------------------------------

  private async flushAll(): Promise<FlushReport[]> {
    const reports: FlushReport[] = []
    let failure: unknown
    for (const entry of this.tables.values()) {
      try {
        reports.push(await this.flushEntry(entry, true))
      } catch (error) {
        failure ??= error
      }
    }
    if (failure) throw failure
    if (this.durability === 'checkpoint') {
      // After a fully successful flush, replace the checkpoint: what it held is applied.
      await this.runCheckpoint().catch((error) =>
        this.reportError(durabilityError('Checkpoint failed', error)),
      )
    }
    return reports
  }

  /** Flushes one table, one flush at a time per table in this process. */
  private flushEntry(entry: TableEntry, explicit: boolean): Promise<FlushReport> {
    entry.busy++
    this.journal?.flushStarted(entry.meta.id)
    this.inserts.reset(entry.meta.id)
    const run = entry.chain.then(
      () => flushTable(this.flushContext(), entry.meta, entry.db as unknown as Executor),
      () => flushTable(this.flushContext(), entry.meta, entry.db as unknown as Executor),
    )
    entry.chain = run.catch(() => undefined)
    return run.then(
      (report) => {
        entry.busy--
        entry.failures = 0
        entry.nextAttemptAt = 0
        if (report.batches.length > 0) this.emit('flush', report)
        return report
      },
      (error: unknown) => {
        entry.busy--
        entry.failures++
        const pause = Math.min(
          this.settings.flushInterval * 2 ** (entry.failures - 1),
          this.settings.maxBackoffMs,
        )
        entry.nextAttemptAt = this.now() + pause
        const wrapped = asFlushError(error, entry.meta.id)
        if (!explicit) this.reportError(wrapped)
        throw wrapped
      },
    )
  }

  private async backgroundFlush(): Promise<void> {
    if (this.closing) return
    for (const entry of this.tables.values()) {
      if (entry.busy > 0 || this.now() < entry.nextAttemptAt) continue
      const [pending, inflight] = await Promise.all([
        this.ipc.keys(this.keys.pendingPrefix(entry.meta.id)),
        this.ipc.keys(this.keys.inflightPrefix(entry.meta.id)),
      ]).catch(() => [[1], [1]])
      if (pending.length === 0 && inflight.length === 0) continue
      await this.flushEntry(entry, false).catch(() => undefined)
    }
  }

  private requestFlush(entry: TableEntry): void {
    if (entry.busy > 0 || this.now() < entry.nextAttemptAt || this.closing) return
    this.track(this.flushEntry(entry, false).catch(() => undefined))
  }

  private lockedWorkContext(): LockedWorkContext {
    return {
      ipc: this.ipc,
      keys: this.keys,
      logger: this.logger,
      now: this.now,
      lockTtlSeconds: this.settings.lockTtlSeconds,
      lockWaitMs: this.settings.lockWaitMs,
    }
  }

  private flushContext(): FlushContext {
    return {
      ...this.lockedWorkContext(),
      orphanRetries: this.settings.orphanRetries,
      ledgerRetentionMs: this.settings.ledgerRetentionMs,
      report: (error) => this.reportError(error),
      onCommitted: (table, marks) => {
        for (const [instance, seq] of marks) this.journal?.trim(instance, table, seq)
      },
      shouldPrune: (table) => {
        const entry = this.tables.get(table)
        if (!entry || this.now() - entry.lastPruneAt < 3_600_000) return false
        entry.lastPruneAt = this.now()
        return true
      },
    }
  }

  // Durability -------------------------------------------------------------------------------

  private async runCheckpoint(): Promise<CheckpointReport | null> {
    if (!this.checkpointStore) return null
    const report = await takeCheckpoint(this.checkpointContext(), this.checkpointStore, () =>
      this.emit('checkpointStart'),
    )
    if (report) this.emit('checkpoint', report)
    return report
  }

  private async trimJournal(): Promise<void> {
    const journal = this.journal
    if (!journal) return
    for (const instance of journal.instancesWithEntries()) {
      const tables = journal.tablesOf(instance)
      for (const connection of new Set(tables.map(connectionOf))) {
        const db = this.options.databases[connection]
        if (!db) continue
        const marks = await readWatermarks(db as unknown as Executor, [instance])
        for (const [table, seq] of marks.get(instance) ?? []) journal.trim(instance, table, seq)
      }
    }
  }

  private checkpointContext(): CheckpointContext {
    return {
      ...this.lockedWorkContext(),
      epoch: this.epoch,
    }
  }

  private recoveryContext(): RecoveryContext {
    return {
      ...this.lockedWorkContext(),
      databases: this.options.databases as unknown as Record<string, Executor>,
    }
  }

  // Shutdown ---------------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    this.timers = []
    this.removeSignals?.()
    await Promise.allSettled([...this.work])
    let failure: unknown
    let started = true
    await this.ready.catch(() => {
      started = false
    })
    if (started) {
      await this.inserts.drain()
      await this.journal?.drain()
      try {
        await this.flushAll()
      } catch (error) {
        failure = error
        this.reportError(asFlushError(error, undefined))
        if (this.checkpointStore) {
          // Keep the pending state: the checkpoint now holds everything the flush could not write.
          await this.runCheckpoint().catch((e) =>
            this.reportError(durabilityError('Final checkpoint failed', e)),
          )
        }
      }
      await this.journal?.drain()
    }
    await Promise.allSettled([...this.work])
    this.journal?.stop()
    if (this.envFile && this.checkpointPath) await releaseEnv(this.checkpointPath, this.envFile)
    if (failure) throw failure
  }

  private track(promise: Promise<unknown>): void {
    this.work.add(promise)
    void promise.finally(() => this.work.delete(promise))
  }

  /**
   * A call made once `close()` began: rejected with WB_CLOSED. After a shutdown signal, only
   * once the final flush is done and the process had a turn to end (the buffer re-raises the
   * signal): a batch job's bare loop of awaited calls must not end the process with an
   * unhandled WB_CLOSED before its acknowledged writes are flushed.
   */
  private refused(): Promise<never> {
    const error = new WriteBufferError('WB_CLOSED', 'The write buffer is closed.')
    if (!this.signalled || !this.closing) return Promise.reject(error)
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))
    return this.closing.then(nextTurn, nextTurn).then(() => Promise.reject(error))
  }

  private reportError(error: WriteBufferError): void {
    let delivered = false
    if (this.options.onError) {
      delivered = true
      try {
        this.options.onError(error)
      } catch (callbackError) {
        this.logger.error('the onError callback threw', callbackError)
      }
    }
    if (this.listenerCount('error') > 0) {
      delivered = true
      this.emit('error', error)
    }
    if (!delivered) this.logger.error(error.message, error)
  }
}

/**
 * Creates a write buffer. Use it at once; operations wait for `buffer.ready` (start-up
 * recovery) before they touch the IPC store.
 *
 * @example
 * const buffer = createWriteBuffer({ ipc, databases: { default: db } })
 * await buffer.ready
 * await buffer.table(posts).where(1).increment('views')
 */
export function createWriteBuffer(options: WriteBufferOptions): WriteBuffer {
  return new WriteBuffer(options)
}

/** Creates a write buffer and waits until it has recovered and flushed what a crash left. */
export async function openWriteBuffer(options: WriteBufferOptions): Promise<WriteBuffer> {
  const buffer = new WriteBuffer(options)
  try {
    await buffer.ready
  } catch (error) {
    await buffer.close().catch(() => undefined)
    throw error
  }
  return buffer
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new WriteBufferError(
      'WB_INVALID_OPTION',
      `${name} must be a positive number of milliseconds/seconds.`,
    )
  }
  return value
}

function isPgTable(value: unknown): value is PgTable {
  return typeof value === 'object' && value !== null && Symbol.for('drizzle:IsDrizzleTable') in value
}

function asFlushError(error: unknown, table: string | undefined): WriteBufferError {
  if (error instanceof WriteBufferError) return error
  return new WriteBufferError(
    'WB_FLUSH_FAILED',
    `Flush failed: ${(error as Error)?.message ?? String(error)}`,
    {
      cause: error,
      table,
    },
  )
}

function durabilityError(what: string, error: unknown): WriteBufferError {
  if (error instanceof WriteBufferError) return error
  return new WriteBufferError('WB_DURABILITY', `${what}: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  })
}
