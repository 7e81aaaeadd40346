import type { Ipc, Json } from '@tidesync/ipc'
import type { Journal } from '../checkpoint/journal.js'
import { appliedReceipts } from '../flush/batch-ledger.js'
import { parseReceiptField, receiptField } from '../flush/plan.js'
import type { Executor } from '../flush/sql-util.js'
import type { Gate } from '../lifecycle/gate.js'
import type { BaseCache } from '../read/base-cache.js'
import type { InflightBatchList } from '../read/batch-list.js'
import { type ReadContext, readMany } from '../read/read-many.js'
import { readValue } from '../read/read-value.js'
import type { GroupCommit } from '../store/group-commit.js'
import type { KeyLayout } from '../store/keys.js'
import { type EncodedKey, rowField, rowId, type TableMeta } from '../store/table-meta.js'
import type { AnyPgDatabase, FlushReport } from '../types.js'
import type { RedeliveryReport, TableSink } from './table-buffer.js'
import { TurnBudget } from './turn-budget.js'

/**
 * Every this many calls (writes and reads), the calls wait for the next event-loop turn: a loop
 * of awaited calls on the memory driver then lets timers, I/O and signal handlers run.
 */
const CALLS_PER_TURN = 1000

/** What the table sink needs from the buffer. */
export interface SinkContext {
  ipc: Ipc
  keys: KeyLayout
  now: () => number
  cache: BaseCache
  /** Listings of in-flight batches, shared by reads. */
  batches: InflightBatchList
  gate: Gate
  maxQueueSize: number
  lockTtlSeconds: number
  lockWaitMs: number
  readWaitMs: number
  /** The journal, in journal durability once start-up opened it: writes go through it then. */
  journal: () => Journal | undefined
  /** Queued inserts: one IPC list item per table and turn. */
  inserts: GroupCommit<Record<string, Json>>
  /** The table's database; throws WB_INVALID_OPTION when the table is not registered. */
  dbOf: (meta: TableMeta) => AnyPgDatabase
  /** Starts a background flush of the table (its queue reached maxQueueSize). */
  requestFlush: (meta: TableMeta) => void
  /** Flushes the table now (`TableBuffer.flush()`). */
  flush: (meta: TableMeta) => Promise<FlushReport>
}

/**
 * The operations every `TableBuffer` hands to the buffer: into the IPC store's pending keys, or
 * through the journal in journal durability.
 */
export function createSink(ctx: SinkContext): TableSink {
  const { ipc, keys, gate } = ctx
  const turns = new TurnBudget(CALLS_PER_TURN)
  const reads: ReadContext = {
    ipc,
    keys,
    cache: ctx.cache,
    batches: ctx.batches,
    now: ctx.now,
    readWaitMs: ctx.readWaitMs,
  }

  /**
   * Runs a write: refused once closed, waits for start-up, starts a flush past maxQueueSize
   * (`write` resolves with what this process queued for the table since its last flush of it;
   * 0 for the merged kinds, which do not grow with repeated writes). Every CALLS_PER_TURN
   * calls, the calls wait for the next event-loop turn before they resolve.
   */
  const operation = async (meta: TableMeta, write: (journal: Journal | undefined) => Promise<number>) => {
    if (gate.closing) return gate.refused()
    await gate.hold(
      (async () => {
        await gate.ready
        const length = await write(ctx.journal())
        if (length >= ctx.maxQueueSize) ctx.requestFlush(meta)
      })(),
    )
    const turn = turns.spend()
    if (turn) await turn
  }

  /**
   * The acknowledgement every insert of one group shares (the group's commit, as a void promise
   * that also starts a flush past maxQueueSize), tracked once per group as work in progress.
   * Why: one promise per turn and table instead of a chain of them per insert.
   */
  const groupAcks = new WeakMap<Promise<number>, Promise<void>>()
  const acknowledged = (meta: TableMeta, appended: Promise<number>): Promise<void> => {
    let ack = groupAcks.get(appended)
    if (ack === undefined) {
      ack = appended.then((length) => {
        if (length >= ctx.maxQueueSize) ctx.requestFlush(meta)
      })
      groupAcks.set(appended, ack)
      gate.track(ack.catch(() => undefined))
    }
    return ack
  }

  const appendInsert = (meta: TableMeta, row: Record<string, Json>, journal: Journal | undefined) =>
    journal ? journal.append(meta.id, ['n', row]) : ctx.inserts.append(meta.id, row)

  const sink: TableSink = {
    increment: (meta, key, column, delta, receipt) =>
      operation(meta, async (journal) => {
        if (receipt !== undefined) {
          if (journal) return journal.append(meta.id, ['r', key, column, delta, receipt])
          // One field per receipt, set (not added): giving it again changes nothing.
          await ipc.hset(keys.pending(meta.id, 'rct'), { [receiptField(key, column, receipt)]: delta })
          return 0
        }
        if (journal) return journal.append(meta.id, ['i', key, column, delta])
        await ipc.hincrBy(keys.pending(meta.id, 'inc'), rowField(key, column), delta)
        return 0
      }),
    incrementMany: (meta, items) =>
      operation(meta, async (journal) => {
        if (journal) {
          // Appended in one turn: one journal group.
          const lengths = await Promise.all(
            items.map(({ key, column, delta, receipt }) =>
              journal.append(meta.id, ['r', key, column, delta, receipt]),
            ),
          )
          return Math.max(0, ...lengths)
        }
        // One field per receipt, set (not added): giving one again changes nothing.
        const fields: Record<string, Json> = {}
        for (const { key, column, delta, receipt } of items)
          fields[receiptField(key, column, receipt)] = delta
        await ipc.hset(keys.pending(meta.id, 'rct'), fields)
        return 0
      }),
    redeliver: async (meta, items) => {
      await gate.open()
      const db = ctx.dbOf(meta)
      // Under the flush lock: no flush can record one of these receipts between the ledger
      // lookup and the hand-over, so none is counted by a read after it was applied.
      return ipc.withLock(
        keys.lock(meta.id),
        ctx.lockTtlSeconds,
        async () => {
          const applied = await appliedReceipts(
            db as unknown as Executor,
            meta.id,
            items.map((item) => item.receipt),
          )
          const report: RedeliveryReport = { delivered: [], alreadyApplied: [] }
          for (const item of items) {
            if (applied.has(item.receipt)) {
              report.alreadyApplied.push(item.receipt)
              continue
            }
            await sink.increment(meta, item.key, item.column, item.delta, item.receipt)
            report.delivered.push(item.receipt)
          }
          return report
        },
        { waitMs: ctx.lockWaitMs },
      )
    },
    update: (meta, key, fields) =>
      operation(meta, async (journal) => {
        if (journal) return journal.append(meta.id, ['u', key, fields])
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
    insert: (meta, row) => {
      // Once started, an insert only joins its turn's group (it yields to the event loop anyway:
      // the group is committed in a later turn, so it spends no turn budget).
      if (gate.closing || !gate.isReady) return operation(meta, (journal) => appendInsert(meta, row, journal))
      return acknowledged(meta, appendInsert(meta, row, ctx.journal()))
    },
    get: async (meta, key: EncodedKey, column) => {
      await gate.open()
      const value = await readValue(reads, meta, ctx.dbOf(meta), key, column)
      const turn = turns.spend()
      if (turn) await turn
      return value
    },
    getMany: async (meta, rowKeys, columns, options) => {
      await gate.open()
      const cells = await readMany(reads, meta, ctx.dbOf(meta), rowKeys, columns, options)
      const turn = turns.spend()
      if (turn) await turn
      return cells
    },
    flush: async (meta) => {
      await gate.open()
      return ctx.flush(meta)
    },
  }
  return sink
}
