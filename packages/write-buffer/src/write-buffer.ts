import { EventEmitter } from 'node:events'
import type { Ipc, Json } from '@tidesync/ipc'
import type { PgTable } from 'drizzle-orm/pg-core'
import { copySupported, preloadCopy } from './db/copy-in.js'
import { guardPgPool } from './db/guard-pg-pool.js'
import { asFlushError, durabilityError, WriteBufferError } from './errors.js'
import { FlushScheduler } from './flush/scheduler.js'
import type { Executor } from './flush/sql-util.js'
import { DurableState } from './lifecycle/durability.js'
import { Gate } from './lifecycle/gate.js'
import { type LifecycleContext, shutdown, start } from './lifecycle/lifecycle.js'
import { type RecoveryContext, restoreOpenOrphans } from './lifecycle/recovery.js'
import {
  checkRequired,
  type EffectiveDurability,
  resolveDurability,
  resolveSettings,
} from './lifecycle/settings.js'
import { handleShutdownSignals } from './lifecycle/signals.js'
import { defaultLogger } from './logger.js'
import { BaseCache } from './read/base-cache.js'
import { InflightBatchList } from './read/batch-list.js'
import { GroupCommit } from './store/group-commit.js'
import { encodeInsertItems } from './store/insert-items.js'
import { KeyLayout, newBatchId } from './store/keys.js'
import { TableMeta } from './store/table-meta.js'
import { type DeferredOptions, DeferredWrites } from './tables/deferred.js'
import { createSink } from './tables/sink.js'
import { TableBuffer, type TableSink } from './tables/table-buffer.js'
import type {
  CheckpointReport,
  FlushReport,
  Logger,
  TableRegistration,
  WriteBufferEvents,
  WriteBufferOptions,
} from './types.js'

export type { EffectiveDurability } from './lifecycle/settings.js'

/**
 * A write-behind buffer over drizzle tables, with all pending state in an IPC store.
 * Create it with {@link createWriteBuffer} (or {@link openWriteBuffer}, which waits for `ready`).
 *
 * This class wires the parts together and is the public face; the jobs live in their modules:
 * start-up and shutdown in `lifecycle/`, the table operations in `tables/sink.ts`, when tables
 * flush in `flush/scheduler.ts`, how in `flush/flusher.ts`.
 */
export class WriteBuffer extends EventEmitter<WriteBufferEvents> {
  /** Resolves once start-up recovery (checkpoint or journal, then a flush) is done. */
  readonly ready: Promise<void>
  readonly durability: EffectiveDurability
  readonly keys: KeyLayout
  private readonly ipc: Ipc
  private readonly logger: Logger
  private readonly handles = new Map<string, TableBuffer<PgTable>>()
  private readonly gate = new Gate()
  private readonly scheduler: FlushScheduler
  private readonly durable: DurableState
  private readonly sink: TableSink
  private readonly recovery: RecoveryContext
  private readonly lifecycle: LifecycleContext

  constructor(private readonly options: WriteBufferOptions) {
    super()
    checkRequired(options)
    this.ipc = options.ipc
    const logger = options.logger ?? defaultLogger
    this.logger = logger
    for (const db of Object.values(options.databases)) {
      guardPgPool(db, logger)
      preloadCopy(db)
    }
    const now = options.now ?? Date.now
    const settings = resolveSettings(options)
    const keys = new KeyLayout(options.keyPrefix ?? 'wb:')
    this.keys = keys
    const durabilitySettings = resolveDurability(options)
    this.durability = durabilitySettings.durability
    const report = (error: WriteBufferError) => this.reportError(error)
    const { lockTtlSeconds, lockWaitMs } = settings
    this.recovery = {
      ipc: this.ipc,
      keys,
      logger,
      now,
      lockTtlSeconds,
      lockWaitMs,
      databases: options.databases as unknown as Record<string, Executor>,
    }
    this.durable = new DurableState(this.recovery, durabilitySettings, newBatchId(now()))
    /**
     * Inserts of one table and turn go to the IPC store in one call: as COPY text when the
     * table's flushes will COPY, else as the JSON text of the rows (see store/insert-items.ts).
     */
    const inserts = new GroupCommit<Record<string, Json>>((table, rows, previous) => {
      let items: string[]
      try {
        const entry = this.scheduler.get(table)
        const asText = settings.insertMethod === 'copy' && entry !== undefined && copySupported(entry.db)
        items = entry ? encodeInsertItems(entry.meta, rows, asText) : [JSON.stringify(rows)]
      } catch (error) {
        return Promise.reject(error)
      }
      return previous.then(async () => {
        await this.ipc.rpush(keys.pending(table, 'ins'), ...items)
      })
    })
    this.scheduler = new FlushScheduler({
      ...this.recovery,
      flushInterval: settings.flushInterval,
      maxBackoffMs: settings.maxBackoffMs,
      orphanRetries: settings.orphanRetries,
      ledgerRetentionMs: settings.ledgerRetentionMs,
      insertMethod: settings.insertMethod,
      isClosing: () => this.gate.closing !== undefined,
      track: (work) => this.gate.track(work),
      report,
      onFlushStart: (table) => {
        this.durable.journal?.flushStarted(table)
        inserts.reset(table)
      },
      onCommitted: (table, marks) => {
        for (const [instance, seq] of marks) this.durable.journal?.trim(instance, table, seq)
      },
      onFlushed: (flushed) => this.emit('flush', flushed),
      afterFlushAll: async () => {
        // After a fully successful flush, replace the checkpoint: what it held is applied.
        if (this.durability === 'checkpoint')
          await this.runCheckpoint().catch((error) => report(durabilityError('Checkpoint failed', error)))
      },
    })
    this.sink = createSink({
      ipc: this.ipc,
      keys,
      now,
      cache: new BaseCache(settings.getCacheTtl, now),
      batches: new InflightBatchList(now),
      gate: this.gate,
      maxQueueSize: settings.maxQueueSize,
      lockTtlSeconds,
      lockWaitMs,
      readWaitMs: settings.readWaitMs,
      journal: () => this.durable.journal,
      inserts,
      dbOf: (meta) => this.scheduler.entryOf(meta).db,
      requestFlush: (meta) => this.scheduler.request(this.scheduler.entryOf(meta)),
      flush: (meta) => this.scheduler.flush(this.scheduler.entryOf(meta), true),
    })
    for (const registration of options.tables ?? []) this.register(registration)
    this.lifecycle = {
      recovery: this.recovery,
      gate: this.gate,
      durable: this.durable,
      scheduler: this.scheduler,
      inserts,
      flushInterval: settings.flushInterval,
      checkpointInterval: settings.checkpointInterval,
      checkpoint: () => this.runCheckpoint(),
      report,
      stopTimers: () => undefined,
      removeSignals: () => undefined,
    }
    if (options.handleSignals ?? true)
      this.lifecycle.removeSignals = handleShutdownSignals(() => {
        this.gate.signalled = true
        return this.close()
      }, logger)
    this.ready = start(this.lifecycle)
    this.gate.ready = this.ready
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
    return this.register({ table, ...options }) as unknown as TableBuffer<T>
  }

  /**
   * Writes deferred until a caller's transaction commits, delivered exactly once (see
   * `tables/deferred.ts` for the invariant): `stage` inside the transaction, `deliver` after the
   * commit, `abandon` after a rollback, `recover` at start-up; readers wait on `settled`.
   * @example
   * const deferred = buffer.deferred({ table: 'app_handoffs', marksKey: (g) => `app:pending:${g}`, resolve: (g) => tables[g] })
   * let staged
   * await db.transaction(async (tx) => { ...; staged = await deferred.stage(tx, [{ group: 'posts', key, deltas: { likes: 1 } }]) })
   * await deferred.deliver(staged)
   */
  deferred(options: DeferredOptions): DeferredWrites {
    return new DeferredWrites(this, {
      ...options,
      ipc: options.ipc ?? this.ipc,
      db: options.db ?? this.options.databases.default,
      logger: options.logger ?? this.logger,
      now: options.now ?? this.options.now ?? Date.now,
    })
  }

  /** Flushes every table on every connection; waits for locks; rejects with the first failure. */
  async flush(): Promise<FlushReport[]> {
    await this.gate.open()
    return this.scheduler.flushAll()
  }

  /** Seals pending state and writes a checkpoint now (checkpoint durability only). */
  async checkpoint(): Promise<CheckpointReport | null> {
    await this.gate.open()
    return this.runCheckpoint()
  }

  /**
   * Stops the timers, waits for operations in progress, flushes everything, then releases the
   * LMDB environment. The IPC store and databases stay open (close them after this). When the
   * final flush fails, pending state is checkpointed (checkpoint durability) and the error is
   * thrown.
   */
  close(): Promise<void> {
    this.gate.closing ??= shutdown(this.lifecycle)
    return this.gate.closing
  }

  get closed(): boolean {
    return this.gate.closing !== undefined
  }

  private register(registration: TableRegistration): TableBuffer<PgTable> {
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
    const existing = this.handles.get(meta.id)
    if (existing) return existing
    const handle = new TableBuffer(meta, this.sink)
    this.handles.set(meta.id, handle)
    const entry = this.scheduler.add(meta, db)
    if (this.gate.started) {
      // Registered after start-up: bring back what a previous life left for it, then flush it.
      this.gate.track(
        (async () => {
          await restoreOpenOrphans(this.recovery, meta.id, db as unknown as Executor)
          if ((await this.ipc.keys(this.keys.inflightPrefix(meta.id))).length > 0)
            await this.scheduler.flush(entry, false)
        })().catch((error) => this.reportError(asFlushError(error, meta.id))),
      )
    }
    return handle
  }

  private async runCheckpoint(): Promise<CheckpointReport | null> {
    const report = await this.durable.checkpoint(() => this.emit('checkpointStart'))
    if (report) this.emit('checkpoint', report)
    return report
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

function isPgTable(value: unknown): value is PgTable {
  return typeof value === 'object' && value !== null && Symbol.for('drizzle:IsDrizzleTable') in value
}
