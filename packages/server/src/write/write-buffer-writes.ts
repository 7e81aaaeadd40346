import type { Ipc, Json } from '@tidesync/ipc'
import type { DeferredWrites, StagedWrites, WriteBuffer } from '@tidesync/write-buffer'
import { getTableName } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { uidIn } from '../db/sql.js'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'
import type { TidesyncTables } from '../schema/metadata.js'
import type { Logger, TidesyncDb } from '../types.js'
import { type DeferredWrite, type PendingRow, type PendingWrites, updateRow } from './pending-writes.js'

/** Rows whose pending values are read at once (bounded, so a big read does not flood the IPC). */
const OVERLAY_CONCURRENCY = 32

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
 * - Reads overlay pending values, so every client sees a write at once. The buffer reads one row
 *   and column at a time, so only rows touched recently are overlaid: each write marks its row
 *   in an IPC hash (`<keyPrefix>pending:<model>`, the deferred API's marks) with a fresh token,
 *   and a read that finds nothing pending for a marked (settled) row unmarks it. Readers wait
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
    private readonly db: TidesyncDb,
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
    const rows = (await this.db.select().from(model.table).where(uidIn(model, touched))) as Array<
      Record<string, unknown>
    >
    const pending = await this.read(model, rows)
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
    const pending = await this.read(model, touched)
    for (const row of touched) {
      const uid = String(row.uid)
      const values = pending.get(uid)
      if (values && Object.keys(values).length > 0) {
        Object.assign(row, values)
        changed.add(row)
      } else {
        // Nothing pending any more: unmark, unless a write marked it again meanwhile.
        await this.deferred.marks.unmark(model.name, uid, marked[uid])
      }
    }
    return changed
  }

  /** The columns of each row whose buffered value differs from the row as read. */
  private async read(
    model: ResolvedModel<unknown>,
    rows: Array<Record<string, unknown>>,
  ): Promise<Map<string, Record<string, unknown>>> {
    const columns = model.buffered
      ? [...model.columns.keys()].filter((k) => k !== 'uid')
      : [...model.counters]
    const table = this.buffer.table(model.table)
    const result = new Map<string, Record<string, unknown>>()
    for (let start = 0; start < rows.length; start += OVERLAY_CONCURRENCY) {
      await Promise.all(
        rows.slice(start, start + OVERLAY_CONCURRENCY).map(async (row) => {
          const uid = String(row.uid)
          const handle = table.where(uid)
          const values: Record<string, unknown> = {}
          for (const column of columns) {
            const value = await handle.get(column)
            if (sameValue(value, row[column])) continue
            values[column] = value
          }
          result.set(uid, values)
        }),
      )
    }
    return result
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(toWireValue(a) as Json) === JSON.stringify(toWireValue(b) as Json)
}
