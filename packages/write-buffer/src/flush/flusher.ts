import { type IpcEntry, IpcError, type Json } from '@tidesync/ipc'
import { tagFlushTransaction } from '../db/capture-tag.js'
import { WriteBufferError } from '../errors.js'
import {
  ALL_KINDS,
  batchTime,
  type KeyLayout,
  newBatchId,
  orphanBatchId,
  PENDING_KINDS,
} from '../store/keys.js'
import type { LockedWorkContext } from '../store/locked-work.js'
import { asWriter, beginWrite, endWrite } from '../store/seqlock.js'
import { rowField, rowId, type TableMeta } from '../store/table-meta.js'
import type { FlushReport } from '../types.js'
import {
  claimReceipts,
  type DeadLetter,
  lookupBatches,
  type OrphanSet,
  pruneLedger,
  recordBatches,
  recordDeadLetters,
  recordOrphans,
  recordWatermarks,
} from './batch-ledger.js'
import { type InsertMethod, insertRows } from './inserts.js'
import { type BatchContent, emptyPlan, listBatches, mergeBatch, type RowChange, readBatch } from './plan.js'
import { applyRowChanges } from './row-changes.js'
import { describeError, type Executor } from './sql-util.js'

export interface FlushContext extends LockedWorkContext {
  orphanRetries: number
  ledgerRetentionMs: number
  /** Reports a background problem (poison rows, unmatched rows, stale batches). */
  report: (error: WriteBufferError) => void
  /** Called after a commit with the journal watermarks it covered. */
  onCommitted?: (table: string, watermarks: Map<string, number>) => void
  /** Whether this flush should also prune old ledger rows. */
  shouldPrune?: (table: string) => boolean
  /** How queued rows are inserted (COPY when the driver has it, else INSERT). @default 'copy' */
  insertMethod?: InsertMethod
}

/**
 * Flushes one table: under the table's IPC lock (waiting for it), takes the pending state into
 * a new in-flight batch, clears batches a previous crash left after their commit, and applies
 * every remaining batch (older failed ones first, merged) in one transaction that also records
 * the batch ids. Only after the commit are the in-flight keys deleted. On failure everything
 * stays in flight for the next attempt.
 */
export async function flushTable(ctx: FlushContext, meta: TableMeta, db: Executor): Promise<FlushReport> {
  try {
    return await ctx.ipc.withLock(
      ctx.keys.lock(meta.id),
      ctx.lockTtlSeconds,
      () => flushLocked(ctx, meta, db),
      {
        waitMs: ctx.lockWaitMs,
      },
    )
  } catch (error) {
    if (error instanceof WriteBufferError) throw error
    if (error instanceof IpcError && error.code === 'IPC_LOCK_TIMEOUT') {
      throw new WriteBufferError('WB_LOCK_TIMEOUT', `Could not take the flush lock of ${meta.id} in time.`, {
        cause: error,
        table: meta.id,
      })
    }
    throw new WriteBufferError('WB_FLUSH_FAILED', `Flush of ${meta.id} failed: ${describeError(error)}`, {
      cause: error,
      table: meta.id,
    })
  }
}

async function flushLocked(ctx: FlushContext, meta: TableMeta, db: Executor): Promise<FlushReport> {
  const { ipc, keys } = ctx
  const table = meta.id
  const seq = keys.seqlock(table)
  // Pending keys only appear without the lock, never vanish: when there are none, skip the
  // seqlock (so an idle table keeps its get() cache).
  if ((await ipc.keys(keys.pendingPrefix(table))).length > 0) {
    await asWriter(ipc, seq, () => claimPending(ctx, table))
  }

  let batches = await listBatches(ipc, keys, table)
  // Batches a crash left behind after their commit: clear them (and bring back their orphans).
  for (let round = 0; round < 10 && batches.size > 0; round++) {
    const committed = await lookupBatches(db, table, [...batches.keys()])
    if (committed.size === 0) break
    await asWriter(ipc, seq, async () => {
      for (const [id, orphans] of committed) {
        if (orphans) await ipc.restore(orphanEntries(keys, table, orphanBatchId(id), orphans))
      }
      await ipc.del(...batchKeys(keys, table, [...committed.keys()]))
    })
    batches = await listBatches(ipc, keys, table)
  }
  const report: FlushReport = {
    table,
    batches: [],
    inserted: 0,
    updatedRows: 0,
    statements: 0,
    orphaned: 0,
    deadLettered: 0,
  }
  if (batches.size === 0) return report

  const plan = emptyPlan()
  const letters: DeadLetter[] = []
  const staleBefore = ctx.now() - ctx.ledgerRetentionMs
  for (const [id, kinds] of batches) {
    const content = await readBatch(ipc, keys, table, id, kinds)
    if ((batchTime(id) ?? Number.POSITIVE_INFINITY) < staleBefore) letters.push(staleLetter(id, content))
    else mergeBatch(plan, content)
  }
  const ids = [...batches.keys()]
  const newest = ids[ids.length - 1] as string
  const counter = { statements: 0 }
  const orphans: OrphanSet = { inc: {}, upd: {}, att: {} }
  const unmatchedReported: RowChange[] = []
  const deadRows: RowChange[] = []
  let poisonInserts: { row: Record<string, Json>; error: unknown }[] = []
  let poisonChanges: { row: RowChange; error: unknown }[] = []
  let odd = false
  try {
    await db.transaction(async (tx) => {
      await tx.execute(tagFlushTransaction)
      await recordBatches(tx, table, ids, counter)
      const fresh = await claimReceipts(tx, table, plan.receipts, counter)
      const inserted = await insertRows(tx, meta, plan.inserts, counter, ctx.insertMethod)
      const changed = await applyRowChanges(tx, meta, withReceipted(plan.rows.values(), fresh), counter)
      report.inserted = inserted.inserted
      report.updatedRows = changed.updated
      poisonInserts = inserted.poison
      poisonChanges = changed.poison
      for (const row of changed.unmatched) {
        const attempts = row.attempts + 1
        if (attempts > ctx.orphanRetries) {
          deadRows.push(row)
          continue
        }
        if (attempts === 1) unmatchedReported.push(row)
        addOrphan(orphans, row, attempts)
      }
      for (const { row, error } of poisonInserts) {
        letters.push({ batch: newest, kind: 'insert', payload: row, error: describeError(error) })
      }
      for (const { row, error } of poisonChanges) {
        letters.push({
          batch: newest,
          kind: 'change',
          payload: changePayload(row),
          error: describeError(error),
        })
      }
      for (const row of deadRows) {
        letters.push({
          batch: newest,
          kind: 'change',
          payload: changePayload(row),
          error: `no row matched after ${ctx.orphanRetries} flushes`,
        })
      }
      report.orphaned = Object.keys(orphans.att).length
      if (report.orphaned > 0) await recordOrphans(tx, table, newest, orphans, counter)
      await recordWatermarks(tx, table, plan.watermarks, counter)
      await recordDeadLetters(tx, table, letters, counter)
      if (ctx.shouldPrune?.(table)) await pruneLedger(tx, table, ctx.ledgerRetentionMs)
      // From here until the in-flight keys are gone, readers must wait: the database is about
      // to hold what the in-flight keys still hold.
      await beginWrite(ipc, keys.seqlock(table))
      odd = true
    })
    if (report.orphaned > 0) await ipc.restore(orphanEntries(keys, table, orphanBatchId(newest), orphans))
    await ipc.del(...batchKeys(keys, table, ids))
  } finally {
    if (odd) await endWrite(ipc, keys.seqlock(table))
  }
  report.batches = ids
  report.statements = counter.statements
  report.deadLettered = letters.length
  ctx.onCommitted?.(table, plan.watermarks)
  reportProblems(ctx, meta, { unmatchedReported, deadRows, poisonInserts, poisonChanges, letters })
  return report
}

/**
 * The rows with the receipted increments whose receipt this transaction claimed added to
 * their plain ones (copies: the plan stays as read, for a retry).
 */
function withReceipted(rows: Iterable<RowChange>, fresh: Set<string>): RowChange[] {
  const out: RowChange[] = []
  for (const row of rows) {
    if (row.receipted.size === 0) {
      out.push(row)
      continue
    }
    const add = new Map(row.add)
    for (const [receipt, { column, delta }] of row.receipted) {
      if (fresh.has(receipt)) add.set(column, (add.get(column) ?? 0n) + delta)
    }
    out.push({ ...row, add, receipted: new Map() })
  }
  return out
}

/** Moves every pending key of the table into one new in-flight batch. */
export async function claimPending(
  ctx: Pick<FlushContext, 'ipc' | 'keys' | 'now'>,
  table: string,
): Promise<string | null> {
  const batch = newBatchId(ctx.now())
  let moved = false
  // Order matters: increments/updates before inserts, so a change of a row always travels in
  // the same batch as its insert (or a later one than the insert).
  for (const kind of PENDING_KINDS) {
    if (await ctx.ipc.move(ctx.keys.pending(table, kind), ctx.keys.inflight(table, batch, kind))) moved = true
  }
  return moved ? batch : null
}

export function batchKeys(keys: KeyLayout, table: string, ids: string[]): string[] {
  return ids.flatMap((id) => ALL_KINDS.map((kind) => keys.inflight(table, id, kind)))
}

export function orphanEntries(keys: KeyLayout, table: string, batch: string, orphans: OrphanSet): IpcEntry[] {
  const entries: IpcEntry[] = []
  if (Object.keys(orphans.inc).length) {
    entries.push({ key: keys.inflight(table, batch, 'inc'), type: 'hash', value: orphans.inc })
  }
  if (Object.keys(orphans.upd).length) {
    entries.push({ key: keys.inflight(table, batch, 'upd'), type: 'hash', value: orphans.upd })
  }
  if (Object.keys(orphans.att).length) {
    entries.push({ key: keys.inflight(table, batch, 'att'), type: 'hash', value: orphans.att })
  }
  return entries
}

function addOrphan(orphans: OrphanSet, row: RowChange, attempts: number): void {
  for (const [column, value] of row.set) orphans.upd[rowField(row.key, column)] = value
  for (const [column, delta] of row.add) orphans.inc[rowField(row.key, column)] = delta.toString()
  orphans.att[rowId(row.key)] = attempts
}

function changePayload(row: RowChange): Json {
  return {
    key: row.key,
    set: Object.fromEntries(row.set),
    add: Object.fromEntries([...row.add].map(([c, d]) => [c, d.toString()])),
  }
}

function staleLetter(batch: string, content: BatchContent): DeadLetter {
  return {
    batch,
    kind: 'stale',
    payload: content as Json,
    error: 'recovered batch older than the ledger retention: it may already be applied',
  }
}

function reportProblems(
  ctx: FlushContext,
  meta: TableMeta,
  found: {
    unmatchedReported: RowChange[]
    deadRows: RowChange[]
    poisonInserts: { row: Record<string, Json>; error: unknown }[]
    poisonChanges: { row: RowChange; error: unknown }[]
    letters: DeadLetter[]
  },
): void {
  const table = meta.id
  if (found.unmatchedReported.length > 0) {
    ctx.report(
      new WriteBufferError(
        'WB_ROW_NOT_FOUND',
        `${found.unmatchedReported.length} increment/update row(s) of ${table} matched no row; kept for up to ${ctx.orphanRetries} more flushes.`,
        { table, rows: found.unmatchedReported.map((r) => r.key) },
      ),
    )
  }
  if (found.deadRows.length > 0) {
    ctx.report(
      new WriteBufferError(
        'WB_ROW_NOT_FOUND',
        `${found.deadRows.length} increment/update row(s) of ${table} never matched a row: moved to the dead letters.`,
        { table, rows: found.deadRows.map(changePayload) },
      ),
    )
  }
  const poison = [...found.poisonInserts, ...found.poisonChanges]
  if (poison.length > 0) {
    ctx.report(
      new WriteBufferError(
        'WB_POISON_ROW',
        `${poison.length} row(s) of ${table} were refused by the database and dead-lettered: ${describeError(poison[0]?.error)}`,
        {
          table,
          cause: poison[0]?.error,
          rows: [
            ...found.poisonInserts.map((p) => p.row),
            ...found.poisonChanges.map((p) => changePayload(p.row)),
          ],
        },
      ),
    )
  }
  const stale = found.letters.filter((l) => l.kind === 'stale')
  if (stale.length > 0) {
    ctx.report(
      new WriteBufferError(
        'WB_STALE_BATCH',
        `${stale.length} recovered batch(es) of ${table} were too old to apply safely.`,
        {
          table,
          rows: stale.map((l) => l.batch),
        },
      ),
    )
  }
}
