import { randomBytes } from 'node:crypto'
import { type Ipc, IpcUnavailableError, type Json } from '@tidesync/ipc'
import { eq, sql } from 'drizzle-orm'
import type { TidesyncTx } from '../db/types.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { uidIn } from '../services/read-records.js'
import type { Logger, TidesyncDb } from '../types.js'
import { toWireValue } from '../validation/values.js'
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
 * - Exactly-once caveat: a process crash between the commit and the hand-off loses those
 *   writes (a counter increment, the fields of a buffered update): at most once, never twice,
 *   since the change ids committed. `DirectWrites` has no such window. A hand-off the buffer
 *   refuses (its IPC unreachable) is written straight to the table instead, before the mark
 *   settles, so it is lost only when the table refuses it too.
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

  async reserve(writes: DeferredWrite[]): Promise<void> {
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
    for (const write of writes) {
      const row = this.buffer.table(write.model.table).where(write.uid)
      // What the buffer has not taken yet (a failure part-way leaves the rest to the database).
      let fields = write.fields
      const deltas = { ...(write.deltas ?? {}) }
      /** The increment under way when the buffer failed. */
      let current: string | undefined
      try {
        if (fields) {
          await row.update(fields)
          fields = undefined
        }
        for (const [column, delta] of Object.entries(deltas)) {
          current = column
          await row.increment(column, delta)
          delete deltas[column]
        }
      } catch (error) {
        // An IPC request that may have been applied (a timeout after it was sent): writing its
        // delta to the table as well could count it twice, so it is left to the buffer
        // (at most once), and only what surely did not reach the buffer is written directly.
        if (current !== undefined && isOutcomeUnknown(error)) {
          delete deltas[current]
          this.logger.error(
            `write buffer: the outcome of an increment of ${write.model.name} ${write.uid}.${current} is unknown (not written again)`,
            error,
          )
        }
        try {
          await this.writeDirectly(write, fields, deltas)
          this.logger.warn(
            `write buffer refused a committed write of ${write.model.name} ${write.uid}: written to the table instead`,
            error,
          )
        } catch (directError) {
          this.logger.error(
            `write buffer refused a committed write of ${write.model.name} ${write.uid}, and so did the table (it is lost)`,
            error,
            directError,
          )
          failure ??= directError
        }
      }
    }
    await this.release(writes)
    if (failure !== undefined) throw failure
  }

  /**
   * The fallback of a hand-off the buffer refused (its IPC unreachable): one
   * `UPDATE ... SET col = col + delta, field = value` of the row, retried with a short backoff,
   * still under the record's in-flight mark, so that an acknowledged change is not lost while
   * the process lives.
   */
  private async writeDirectly(
    write: DeferredWrite,
    fields: Record<string, unknown> | undefined,
    deltas: Record<string, number>,
  ): Promise<void> {
    const set: Record<string, unknown> = { ...(fields ?? {}) }
    for (const [column, delta] of Object.entries(deltas)) {
      set[column] = sql`${write.model.columns.get(column)!} + ${delta}`
    }
    if (Object.keys(set).length === 0) return
    for (let attempt = 0; ; attempt++) {
      try {
        await this.db.update(write.model.table).set(set).where(eq(write.model.uid, write.uid))
        return
      } catch (error) {
        if (attempt >= DIRECT_WRITE_BACKOFF_MS.length) throw error
        await sleep(DIRECT_WRITE_BACKOFF_MS[attempt]!)
      }
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
      for (const uid of expired) {
        this.logger.warn(
          `write buffer hand-off of ${model.name} ${uid} still in flight after ${HAND_OFF_TIMEOUT_MS} ms ` +
            '(a server stopped between a commit and its hand-off?): its buffered write may be lost',
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

/**
 * An IPC failure (possibly wrapped by the write buffer) after which the store may still have
 * applied the request.
 */
function isOutcomeUnknown(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof IpcUnavailableError) return e.outcomeUnknown
  }
  return false
}
