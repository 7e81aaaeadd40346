import type { Ipc, Json } from '@tidesync/ipc'
import type { DeferredWrites, ReadManyOptions, StagedWrites, WriteBuffer } from '@tidesync/write-buffer'
import { getTableName } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'
import type { TidesyncTables } from '../schema/metadata.js'
import type { Logger, TidesyncDb } from '../types.js'
import {
  type DeferredWrite,
  PendingChangedError,
  type PendingRow,
  type PendingWrites,
  updateRow,
} from './pending-writes.js'

/** Rows whose pending values are read in one window (bounded, so a big read stays small). */
const READ_CHUNK = 500

/**
 * Counters and `buffered` models through `@tidesync/write-buffer`.
 *
 * - Writes reach the buffer only after their change's transaction committed: `commitChanges`
 *   stages them in the transaction and delivers them after the commit through the buffer's
 *   `deferred` API, which owns "exactly once after commit" (receipts, the `handoffs` rows,
 *   in-flight marks, sweeps, redelivery, the direct-write fallback; its invariant and tests are
 *   in write-buffer `tables/deferred.ts`). A change refused by scope or `canWrite`, or rolled
 *   back for any reason, hands nothing over. Counter deltas are merged per row and column into
 *   one `UPDATE col = col + delta` per flush; the merged fields of an update of a `buffered`
 *   model are kept per column, last write wins. Creates and deletes are written at once: they
 *   change which records exist, which scope, where and revisions depend on.
 * - Reads overlay pending values, so every client sees a write at once. Only rows touched
 *   recently are looked up in the buffer: each write marks its row in an IPC hash
 *   (`<keyPrefix>pending:<model>`, the deferred API's marks) with a fresh token, and a read that
 *   finds nothing pending for a marked (settled) row unmarks it. The marked rows of a read (or of
 *   a batch of writes) are looked up together, in one window (`getMany`). Readers wait
 *   for a row's mark to settle (`settled`), so a reader that sees a change's revision sees its
 *   value too. Reads also fetch every marked row whatever their filter, and judge where and
 *   scope on the overlaid values.
 */
export class WriteBufferWrites implements PendingWrites {
  readonly kind = 'write-buffer' as const
  private readonly deferred: DeferredWrites

  constructor(
    private readonly buffer: WriteBuffer,
    ipc: Ipc,
    db: TidesyncDb,
    keyPrefix: string,
    logger: Logger,
    now: () => number,
    tables: TidesyncTables,
    models: Map<string, ResolvedModel<unknown>>,
  ) {
    this.deferred = buffer.deferred({
      table: getTableName(tables.handoffs),
      marksKey: (model) => `${keyPrefix}pending:${model}`,
      resolve: (model): PgTable | undefined => models.get(model)?.table,
      ipc,
      db,
      logger,
      now,
    })
  }

  /** Models whose reads the buffer can change. */
  private overlays(model: ResolvedModel<unknown>): boolean {
    return model.buffered || model.counters.size > 0
  }

  defersWrites(model: ResolvedModel<unknown>): boolean {
    return this.overlays(model)
  }

  updatesInTransaction(model: ResolvedModel<unknown>): boolean {
    return !model.buffered
  }

  async increment(): Promise<null> {
    return null
  }

  async update(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    fields: Record<string, unknown>,
  ): Promise<Record<string, unknown> | null> {
    if (!model.buffered) return updateRow(tx, model, uid, fields)
    return null
  }

  async afterCommitDelete(model: ResolvedModel<unknown>, uid: string): Promise<void> {
    if (this.overlays(model)) await this.deferred.marks.unmark(model.name, uid)
  }

  stage(tx: TidesyncTx, writes: DeferredWrite[]): Promise<StagedWrites> {
    return this.deferred.stage(
      tx,
      writes.map((w) => ({ group: w.model.name, key: w.uid, fields: w.fields, deltas: w.deltas })),
    )
  }

  deliver(staged: StagedWrites | undefined): Promise<void> {
    return staged ? this.deferred.deliver(staged) : Promise.resolve()
  }

  abandon(staged: StagedWrites | undefined): Promise<void> {
    return staged ? this.deferred.abandon(staged) : Promise.resolve()
  }

  recoverHandOffs(minAgeMs?: number): Promise<number> {
    return this.deferred.recover({ minAgeMs })
  }

  async pendingUids(model: ResolvedModel<unknown>): Promise<string[]> {
    if (!this.overlays(model)) return []
    return Object.keys(await this.deferred.marks.all(model.name))
  }

  async snapshot(model: ResolvedModel<unknown>, uids: string[]): Promise<Map<string, PendingRow>> {
    const result = new Map<string, PendingRow>()
    if (!this.overlays(model) || uids.length === 0) return result
    const marked = await this.deferred.settled(model.name, uids)
    const touched = uids.filter((uid) => uid in marked)
    if (touched.length === 0) return result
    const pending = await this.read(model, touched)
    for (const uid of touched) {
      result.set(uid, { token: marked[uid]!, values: pending.get(uid) ?? {} })
    }
    return result
  }

  async stillCurrent(
    model: ResolvedModel<unknown>,
    uid: string,
    seen: PendingRow | undefined,
  ): Promise<boolean> {
    if (!this.overlays(model)) return true
    return this.deferred.stillCurrent(model.name, uid, seen?.token)
  }

  async refreshPending(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    seen: Map<string, PendingRow | undefined>,
    rows: Map<string, Record<string, unknown> | null>,
  ): Promise<Map<string, PendingRow | undefined>> {
    const result = new Map<string, PendingRow | undefined>()
    if (!this.overlays(model) || seen.size === 0) return result
    const tokens = new Map<string, Json | undefined>()
    for (const [uid, row] of seen) tokens.set(uid, row?.token)
    const changed = await this.deferred.changedMarks(model.name, tokens)
    if (changed.size === 0) return result
    // A writer that committed before this transaction took the locks may still be handing its
    // write over: its delta is in neither the table nor the buffer yet.
    for (const mark of changed.values()) if (this.deferred.inFlight(mark)) throw new PendingChangedError()
    // Usually a reader unmarked a row whose pending state it found empty (after a flush), or
    // a write was delivered meanwhile: read the rows' pending state again, here, on the rows
    // as this transaction holds them (no flush can change them before it ends).
    const uids = [...changed.keys()]
    const values = await this.read(model, uids, true, {
      db: tx,
      rows: uids.map((uid) => rows.get(uid) ?? null),
    })
    for (const uid of uids) {
      const found = values.get(uid)
      const mark = changed.get(uid) ?? null
      result.set(uid, found || mark !== null ? { token: mark, values: found ?? {} } : undefined)
    }
    return result
  }

  async overlay(
    model: ResolvedModel<unknown>,
    rows: Array<Record<string, unknown>>,
  ): Promise<Set<Record<string, unknown>>> {
    const changed = new Set<Record<string, unknown>>()
    if (!this.overlays(model) || rows.length === 0) return changed
    const marked = await this.deferred.settled(
      model.name,
      rows.map((row) => String(row.uid)),
    )
    const touched = rows.filter((row) => String(row.uid) in marked)
    if (touched.length === 0) return changed
    // Every column's value as the buffer gives it, compared with the row as read: a pending
    // write, or a write straight to the table since the row was read (a refused hand-off
    // written directly), both change what the reader must see.
    const current = await this.read(
      model,
      touched.map((row) => String(row.uid)),
      false,
    )
    const unmark = new Map<string, Json>()
    for (const row of touched) {
      const uid = String(row.uid)
      let differs = false
      for (const [column, value] of Object.entries(current.get(uid) ?? {})) {
        if (sameValue(value, row[column])) continue
        row[column] = value
        differs = true
      }
      if (differs) changed.add(row)
      // Nothing pending any more: unmark, unless a write marked it again meanwhile.
      else unmark.set(uid, marked[uid]!)
    }
    await this.deferred.marks.unmarkMany(model.name, unmark)
    return changed
  }

  /**
   * The buffered columns of each row as `get()` gives them (a row with none has no entry).
   * With `onlyPending` (the default), only the columns with a buffered update or increments
   * pending. Read for all rows at once (`getMany`: one window over the buffer's pending state
   * and one query of the database values it needs).
   */
  private async read(
    model: ResolvedModel<unknown>,
    uids: string[],
    onlyPending = true,
    within: Omit<ReadManyOptions, 'onlyPending'> = {},
  ): Promise<Map<string, Record<string, unknown>>> {
    const columns = model.buffered
      ? [...model.columns.keys()].filter((k) => k !== 'uid')
      : [...model.counters]
    const result = new Map<string, Record<string, unknown>>()
    const table = this.buffer.table(model.table)
    for (let start = 0; start < uids.length; start += READ_CHUNK) {
      const chunk = uids.slice(start, start + READ_CHUNK)
      const rows = within.rows?.slice(start, start + READ_CHUNK)
      const cells = await table.getMany(chunk as never[], columns as never[], {
        ...within,
        onlyPending,
        ...(rows ? { rows } : {}),
      })
      chunk.forEach((uid, i) => {
        const found = cells[i]!
        if (found.size > 0) result.set(uid, Object.fromEntries(found))
      })
    }
    return result
  }
}

/** The values of two columns are the same (as the wire gives them). */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(toWireValue(a) as Json) === JSON.stringify(toWireValue(b) as Json)
}
