import { randomBytes, randomUUID } from 'node:crypto'
import type { Ipc, Json } from '@tidesync/ipc'
import { and, eq, inArray, sql } from 'drizzle-orm'
import { uidIn } from '../db/sql.js'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { toWireValue } from '../model/values.js'
import type { TidesyncTables } from '../schema/metadata.js'
import type { Logger, TidesyncDb } from '../types.js'
import { type DeferredWrite, type PendingRow, type PendingWrites, updateRow } from './pending-writes.js'
import type { WriteBufferLike } from './write-buffer-like.js'

/** Rows whose pending values are read at once (bounded, so a big read does not flood the IPC). */
const OVERLAY_CONCURRENCY = 32

/**
 * How long a hand-off may stay in flight before readers and writers stop waiting for it: only a
 * server that stopped between its commit and its hand-off leaves one that long.
 */
const HAND_OFF_TIMEOUT_MS = 5_000

/** First and longest pause between two looks at an in-flight hand-off. */
const HAND_OFF_POLL_MS = [2, 25] as const

/** How often, at most, a process looks for hand-offs left behind (after one of its own hand-offs). */
const SWEEP_EVERY_MS = 5_000

/** Hand-off rows handed over again per query. */
const SWEEP_BATCH = 500

/** Pauses between the attempts of a refused hand-off's direct write to the table. */
const DIRECT_WRITE_BACKOFF_MS = [25, 100, 250, 500] as const

/** Marks of hand-offs in flight: `hand-off:<expires at, ms>:<node>-<sequence>`. */
const IN_FLIGHT = 'hand-off:'

/** When an in-flight mark expires, or null for a settled mark (or none). */
function inFlightUntil(token: Json | undefined): number | null {
  if (typeof token !== 'string' || !token.startsWith(IN_FLIGHT)) return null
  return Number(token.slice(IN_FLIGHT.length, token.indexOf(':', IN_FLIGHT.length)))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Counters and `buffered` models through `@tidesync/write-buffer`.
 *
 * - Writes reach the buffer only after their change's transaction committed (`handOff`,
 *   called by `commitChanges`): a change refused by scope or `canWrite`, or rolled back for any
 *   reason, hands nothing over. Counter deltas are merged per row and column into one
 *   `UPDATE col = col + delta` per flush; the merged fields of an update of a `buffered` model
 *   are kept per column, last write wins. Creates and deletes are written at once: they change
 *   which records exist, which scope, where and revisions depend on.
 * - Order: inside the transaction, holding the records' locks, each record gets an in-flight
 *   mark (`reserve`); after the hand-off (or the rollback) it is replaced by a settled mark. A
 *   writer or reader that finds a record in flight waits until it settles before reading its
 *   pending state, so the next change of a record starts from the value the previous one left
 *   (and hands its own over after it), and a reader that sees a change's revision sees its
 *   value too. A mark left in flight by a server that stopped expires after
 *   `HAND_OFF_TIMEOUT_MS` (logged).
 * - Counter deltas exactly once, across crashes: each deferred delta gets a receipt and a row in
 *   the `handoffs` table, written in the change's transaction (`reserve`). The buffer takes it
 *   with its receipt (applied at most once per receipt, however often it is given) and the row
 *   is deleted once it did. A row left behind (the server died between the commit and the
 *   hand-off, or before deleting it) is handed over again (`redeliver`, which skips receipts
 *   already applied): by the next reader or writer of the record, which finds the record's
 *   mark expired, or by a sweep of rows older than `HAND_OFF_TIMEOUT_MS` that every server
 *   runs after its own hand-offs (and `recoverHandOffs()`). A hand-off the buffer refuses (its
 *   IPC unreachable) is written straight to the table instead, in a transaction that claims
 *   the receipts (so the buffer skips them if they reached it after all) and deletes the row,
 *   before the mark settles. The fields of a buffered update (last write wins, "last seen"
 *   stamps) have no receipt: a crash between the commit and their hand-off loses them.
 * - Reads overlay pending values, so every client sees a write at once. The buffer reads one row
 *   and column at a time, so only rows touched recently are overlaid: each write marks its row
 *   in an IPC hash (`<keyPrefix>pending:<model>`) with a fresh token, and a read that finds
 *   nothing pending for a marked (settled) row unmarks it. Reads also fetch every marked row
 *   whatever their filter, and judge where and scope on the overlaid values.
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
    private readonly tables: TidesyncTables,
    private readonly models: Map<string, ResolvedModel<unknown>>,
  ) {}

  private lastSweep = 0
  private sweeping: Promise<unknown> | undefined

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

  private settledToken(): string {
    return `${this.now()}-${this.node}-${++this.sequence}`
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
    if (this.overlays(model)) await this.ipc.hdel(this.trackKey(model), uid)
  }

  async reserve(tx: TidesyncTx, writes: DeferredWrite[]): Promise<void> {
    const owed = []
    for (const write of writes) {
      if (!write.deltas || Object.keys(write.deltas).length === 0) continue
      write.receipt = randomUUID()
      owed.push({ receipt: write.receipt, model: write.model.name, uid: write.uid, deltas: write.deltas })
    }
    if (owed.length > 0) await tx.insert(this.tables.handoffs).values(owed)
    const expires = Date.now() + HAND_OFF_TIMEOUT_MS
    for (const [key, group] of this.byModel(writes)) {
      const marks: Record<string, Json> = {}
      for (const write of group) {
        write.token = `${IN_FLIGHT}${expires}:${this.node}-${++this.sequence}`
        marks[write.uid] = write.token
      }
      await this.ipc.hset(key, marks)
    }
  }

  async handOff(writes: DeferredWrite[]): Promise<void> {
    let failure: unknown
    const handedOver: string[] = []
    for (const write of writes) {
      const row = this.buffer.table(write.model.table).where(write.uid)
      // What the buffer has not taken yet (a failure part-way leaves the rest to the database).
      let fields = write.fields
      const deltas = { ...(write.deltas ?? {}) }
      try {
        if (fields) {
          await row.update(fields)
          fields = undefined
        }
        for (const [column, delta] of Object.entries(deltas)) {
          await row.increment(column, delta, { receipt: receiptOf(write.receipt!, column) })
          delete deltas[column]
        }
        if (write.receipt) handedOver.push(write.receipt)
      } catch (error) {
        // An increment whose IPC request timed out may still have reached the buffer: its
        // receipt, claimed by the direct write, makes the buffer skip it then.
        try {
          await this.writeDirectly(write, fields, deltas)
          this.logger.warn(
            `write buffer refused a committed write of ${write.model.name} ${write.uid}: written to the table instead`,
            error,
          )
        } catch (directError) {
          this.logger.error(
            `write buffer refused a committed write of ${write.model.name} ${write.uid}, and so did the table` +
              (write.receipt ? ' (its counter deltas stay owed: handed over again later)' : ' (it is lost)'),
            error,
            directError,
          )
          failure ??= directError
        }
      }
    }
    // Settle the marks first: readers and writers of these records wait for them, while the
    // rows are only bookkeeping (one left behind is handed over again, harmlessly).
    await this.release(writes)
    if (handedOver.length > 0) await this.forget(handedOver)
    this.maybeSweep()
    if (failure !== undefined) throw failure
  }

  /** Deletes hand-off rows the buffer has taken (a row left over is only handed over again, harmlessly). */
  private async forget(receipts: string[]): Promise<void> {
    const { handoffs } = this.tables
    try {
      await this.db.delete(handoffs).where(inArray(handoffs.receipt, receipts))
    } catch (error) {
      this.logger.warn(
        'could not delete handed-over write buffer hand-off rows (they will be handed over again)',
        error,
      )
    }
  }

  /**
   * The fallback of a hand-off the buffer refused (its IPC unreachable), and of a redelivery:
   * one transaction that claims the deltas' receipts (so the buffer skips any that reached it),
   * adds the claimed deltas and sets the fields with one `UPDATE` of the row, and deletes the
   * hand-off row; retried with a short backoff, still under the record's in-flight mark, so
   * that an acknowledged change is not lost while the process lives.
   */
  private async writeDirectly(
    write: Pick<DeferredWrite, 'model' | 'uid' | 'receipt'>,
    fields: Record<string, unknown> | undefined,
    deltas: Record<string, number>,
  ): Promise<void> {
    const { handoffs } = this.tables
    const columns = Object.keys(deltas)
    if (!fields && columns.length === 0 && !write.receipt) return
    for (let attempt = 0; ; attempt++) {
      try {
        await this.db.transaction(async (tx) => {
          const set: Record<string, unknown> = { ...(fields ?? {}) }
          if (write.receipt && columns.length > 0) {
            const fresh = await this.buffer.table(write.model.table).claimReceipts(
              tx,
              columns.map((column) => receiptOf(write.receipt!, column)),
            )
            for (const column of columns) {
              if (!fresh.has(receiptOf(write.receipt, column))) continue
              set[column] = sql`${write.model.columns.get(column)!} + ${deltas[column]!}`
            }
          }
          if (write.receipt) await tx.delete(handoffs).where(eq(handoffs.receipt, write.receipt))
          if (Object.keys(set).length > 0) {
            await tx.update(write.model.table).set(set).where(eq(write.model.uid, write.uid))
          }
        })
        return
      } catch (error) {
        if (attempt >= DIRECT_WRITE_BACKOFF_MS.length) throw error
        await sleep(DIRECT_WRITE_BACKOFF_MS[attempt]!)
      }
    }
  }

  /** Starts a sweep of hand-offs left behind, unless one ran in this process recently. */
  private maybeSweep(): void {
    const now = Date.now()
    if (this.sweeping || now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    this.sweeping = this.recoverHandOffs()
      .catch((error) => this.logger.warn('write buffer hand-off sweep failed (retried later)', error))
      .finally(() => {
        this.sweeping = undefined
      })
  }

  /**
   * Hands over again the counter deltas of committed changes whose hand-off row is older than
   * `minAgeMs` (default `HAND_OFF_TIMEOUT_MS`: their server died or stalled between the commit
   * and the hand-off). Younger rows may belong to a hand-off under way: giving them again is
   * harmless (receipts), only wasted work, except at start-up (`minAgeMs: 0`), when the IPC
   * store may have lost the records' marks (a memory store that died with its process), so
   * nothing else would keep readers from a record's revision without its delta. Returns how
   * many rows it handed over.
   */
  async recoverHandOffs(minAgeMs: number = HAND_OFF_TIMEOUT_MS): Promise<number> {
    const { handoffs } = this.tables
    let total = 0
    for (;;) {
      const rows = await this.db
        .select()
        .from(handoffs)
        .where(sql`${handoffs.createdAt} <= now() - make_interval(secs => ${minAgeMs / 1000})`)
        .orderBy(handoffs.createdAt)
        .limit(SWEEP_BATCH)
      if (rows.length === 0) return total
      await this.redeliver(rows)
      total += rows.length
      if (rows.length < SWEEP_BATCH) return total
    }
  }

  /** Hands over again what is owed for some records (their marks expired in flight). */
  private async recoverRecords(model: ResolvedModel<unknown>, uids: string[]): Promise<void> {
    const { handoffs } = this.tables
    const rows = await this.db
      .select()
      .from(handoffs)
      .where(and(eq(handoffs.model, model.name), inArray(handoffs.uid, uids)))
    if (rows.length > 0) await this.redeliver(rows)
  }

  /**
   * Gives hand-off rows to the buffer again (receipts it applied already are skipped, those
   * still pending are not counted twice) and deletes them; when the buffer refuses, writes them
   * to the table directly (claiming their receipts).
   */
  private async redeliver(rows: Array<typeof this.tables.handoffs.$inferSelect>): Promise<void> {
    const byModel = new Map<string, typeof rows>()
    for (const row of rows) {
      const group = byModel.get(row.model)
      if (group) group.push(row)
      else byModel.set(row.model, [row])
    }
    for (const [name, group] of byModel) {
      const model = this.models.get(name)
      if (!model) {
        this.logger.error(`write buffer hand-off rows of unknown model ${name} are left in place`)
        continue
      }
      const items = group.flatMap((row) =>
        Object.entries(row.deltas).map(([column, delta]) => ({
          key: row.uid,
          column,
          delta,
          receipt: receiptOf(row.receipt, column),
        })),
      )
      try {
        await this.buffer.table(model.table).redeliver(items)
        await this.forget(group.map((row) => row.receipt))
      } catch (error) {
        this.logger.warn(
          `write buffer refused a redelivery of ${model.name}: written to the table instead`,
          error,
        )
        for (const row of group) {
          await this.writeDirectly({ model, uid: row.uid, receipt: row.receipt }, undefined, row.deltas)
        }
      }
      this.logger.warn(
        `handed over ${group.length} counter write(s) of ${model.name} left by a stopped server`,
      )
    }
  }

  async release(writes: DeferredWrite[]): Promise<void> {
    for (const [key, group] of this.byModel(writes.filter((w) => w.token !== undefined))) {
      const marks: Record<string, Json> = {}
      for (let start = 0; start < group.length; start += OVERLAY_CONCURRENCY) {
        await Promise.all(
          group.slice(start, start + OVERLAY_CONCURRENCY).map(async (write) => {
            // Our own mark, or none (a reader that found nothing pending yet unmarked the row
            // meanwhile): one that expired may have been taken over by the next writer.
            const current = await this.ipc.hget(key, write.uid)
            if (current === write.token || current === null) marks[write.uid] = this.settledToken()
          }),
        )
      }
      if (Object.keys(marks).length > 0) await this.ipc.hset(key, marks)
    }
  }

  private byModel(writes: DeferredWrite[]): Map<string, DeferredWrite[]> {
    const groups = new Map<string, DeferredWrite[]>()
    for (const write of writes) {
      const key = this.trackKey(write.model)
      const group = groups.get(key)
      if (group) group.push(write)
      else groups.set(key, [write])
    }
    return groups
  }

  /**
   * The marks of `uids` once none of them is in flight (`marked`: the hash as read, updated in
   * place). A mark still in flight past its expiry (its server stopped) is replaced by a
   * settled one, and logged.
   */
  private async settle(
    model: ResolvedModel<unknown>,
    marked: Record<string, Json>,
    uids: string[],
  ): Promise<Record<string, Json>> {
    const key = this.trackKey(model)
    const refresh = async (uid: string) => {
      const token = await this.ipc.hget(key, uid)
      if (token === null) delete marked[uid]
      else marked[uid] = token
    }
    let pause: number = HAND_OFF_POLL_MS[0]
    for (;;) {
      const waiting = uids.filter((uid) => inFlightUntil(marked[uid]) !== null)
      if (waiting.length === 0) return marked
      const now = Date.now()
      const expired = waiting.filter((uid) => inFlightUntil(marked[uid])! <= now)
      if (expired.length > 0) {
        // Its server stopped (or stalled) between a commit and its hand-off: hand over what it
        // owed before anyone reads the record.
        await this.recoverRecords(model, expired).catch((error) =>
          this.logger.error(`could not hand over the owed counter writes of ${model.name}`, error),
        )
      }
      for (const uid of expired) {
        this.logger.warn(
          `write buffer hand-off of ${model.name} ${uid} still in flight after ${HAND_OFF_TIMEOUT_MS} ms ` +
            '(a server stopped between a commit and its hand-off?): its counter deltas were handed over again; ' +
            'the fields of a buffered update may be lost',
        )
        if ((await this.ipc.hget(key, uid)) === marked[uid])
          await this.ipc.hset(key, { [uid]: this.settledToken() })
        await refresh(uid)
      }
      if (expired.length > 0) continue
      await sleep(pause)
      pause = Math.min(pause * 2, HAND_OFF_POLL_MS[1])
      await Promise.all(waiting.map(refresh))
    }
  }

  async pendingUids(model: ResolvedModel<unknown>): Promise<string[]> {
    if (!this.overlays(model)) return []
    return Object.keys(await this.ipc.hgetall(this.trackKey(model)))
  }

  async snapshot(model: ResolvedModel<unknown>, uids: string[]): Promise<Map<string, PendingRow>> {
    const result = new Map<string, PendingRow>()
    if (!this.overlays(model) || uids.length === 0) return result
    const all = await this.ipc.hgetall(this.trackKey(model))
    const marked = await this.settle(
      model,
      all,
      uids.filter((uid) => uid in all),
    )
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
    const all = await this.ipc.hgetall(key)
    const marked = await this.settle(
      model,
      all,
      rows.map((row) => String(row.uid)).filter((uid) => uid in all),
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

/** The buffer receipt of one column of a hand-off. */
function receiptOf(receipt: string, column: string): string {
  return `${receipt}/${column}`
}
