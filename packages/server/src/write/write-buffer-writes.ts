import { randomBytes } from 'node:crypto'
import type { Ipc, Json } from '@tidesync/ipc'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { uidIn } from '../services/read-records.js'
import type { Logger, TidesyncDb } from '../types.js'
import { toWireValue } from '../validation/values.js'
import { type PendingRow, type PendingWrites, updateRow } from './pending-writes.js'
import type { WriteBufferLike } from './write-buffer-like.js'

/** Rows whose pending values are read at once (bounded, so a big read does not flood the IPC). */
const OVERLAY_CONCURRENCY = 32

/**
 * Counters and `buffered` models through `@tidesync/write-buffer`.
 *
 * - Counter deltas: the change (its id, revision and metadata) commits first, then the deltas go
 *   to the buffer, which merges them per row and column into one `UPDATE col = col + delta` per
 *   flush. Exactly-once caveat: a process crash between that commit and the hand-over loses the
 *   increment (at most once); it is never applied twice. `DirectWrites` has no such window.
 * - Updates of a `buffered` model: the merged fields go to the buffer inside the change's
 *   transaction, while the record's lock is held, so two updates of one field reach the buffer
 *   in clock order. (If that commit then fails the buffer keeps the value; the client retries the
 *   same change, and last-write-wins makes the retry a no-op.) Creates and deletes are written
 *   at once: they change which records exist, which scope, where and revisions depend on.
 * - Reads overlay pending values, so every client sees a write at once. The buffer reads one row
 *   and column at a time, so only rows touched recently are overlaid: each write marks its row
 *   in an IPC hash (`<keyPrefix>pending:<model>`) with a fresh token, and a read that finds
 *   nothing pending for a marked row unmarks it. Reads also fetch every marked row whatever
 *   their filter, and judge where and scope on the overlaid values.
 */
export class WriteBufferWrites implements PendingWrites {
  readonly kind = 'write-buffer' as const
  private readonly node = randomBytes(4).toString('hex')
  private sequence = 0

  constructor(
    private readonly buffer: WriteBufferLike,
    private readonly ipc: Ipc,
    private readonly db: TidesyncDb,
    private readonly keyPrefix: string,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  private trackKey(model: ResolvedModel<unknown>): string {
    return `${this.keyPrefix}pending:${model.name}`
  }

  /** Models whose reads the buffer can change. */
  private overlays(model: ResolvedModel<unknown>): boolean {
    return model.buffered || model.counters.size > 0
  }

  defersWrites(model: ResolvedModel<unknown>): boolean {
    return this.overlays(model)
  }

  private async mark(model: ResolvedModel<unknown>, uid: string): Promise<void> {
    const token = `${this.now()}-${this.node}-${++this.sequence}`
    await this.ipc.hset(this.trackKey(model), { [uid]: token })
  }

  async increment(): Promise<null> {
    return null
  }

  async afterCommitIncrement(
    model: ResolvedModel<unknown>,
    uid: string,
    deltas: Record<string, number>,
  ): Promise<void> {
    await this.mark(model, uid)
    const row = this.buffer.table(model.table).where(uid)
    for (const [column, delta] of Object.entries(deltas)) {
      try {
        await row.increment(column, delta)
      } catch (error) {
        this.logger.error(`write buffer refused ${model.name}.${column} += ${delta} for ${uid}`, error)
        throw error
      }
    }
  }

  async afterCommitDelete(model: ResolvedModel<unknown>, uid: string): Promise<void> {
    if (this.overlays(model)) await this.ipc.hdel(this.trackKey(model), uid)
  }

  async update(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    fields: Record<string, unknown>,
    current: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    if (!model.buffered) return updateRow(tx, model, uid, fields)
    await this.mark(model, uid)
    await this.buffer.table(model.table).where(uid).update(fields)
    return { ...current, ...fields }
  }

  async pendingUids(model: ResolvedModel<unknown>): Promise<string[]> {
    if (!this.overlays(model)) return []
    return Object.keys(await this.ipc.hgetall(this.trackKey(model)))
  }

  async snapshot(model: ResolvedModel<unknown>, uids: string[]): Promise<Map<string, PendingRow>> {
    const result = new Map<string, PendingRow>()
    if (!this.overlays(model) || uids.length === 0) return result
    const marked = await this.ipc.hgetall(this.trackKey(model))
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
    return (await this.ipc.hget(this.trackKey(model), uid)) === (seen?.token ?? null)
  }

  async overlay(
    model: ResolvedModel<unknown>,
    rows: Array<Record<string, unknown>>,
  ): Promise<Set<Record<string, unknown>>> {
    const changed = new Set<Record<string, unknown>>()
    if (!this.overlays(model) || rows.length === 0) return changed
    const key = this.trackKey(model)
    const marked = await this.ipc.hgetall(key)
    const touched = rows.filter((row) => String(row.uid) in marked)
    if (touched.length === 0) return changed
    const pending = await this.read(model, touched)
    for (const row of touched) {
      const uid = String(row.uid)
      const values = pending.get(uid)
      if (values && Object.keys(values).length > 0) {
        Object.assign(row, values)
        changed.add(row)
      } else if ((await this.ipc.hget(key, uid)) === marked[uid]) {
        // Nothing pending any more: unmark, unless a write marked it again meanwhile.
        await this.ipc.hdel(key, uid)
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
