import { randomUUID } from 'node:crypto'
import type { Ipc, Json } from '@tidesync/ipc'
import type { PgTable } from 'drizzle-orm/pg-core'
import type { AnyPgDatabase, Logger } from '../types.js'
import { type DeferredTarget, HandoffRows, receiptOf } from './handoff-rows.js'
import { InFlightMarks, inFlightUntil } from './in-flight-marks.js'

export type { DeferredTarget } from './handoff-rows.js'

/** Marks read per IPC call (`hmget`): bounded, so a big delivery does not make one huge reply. */
const MARKS_PER_CALL = 500

/** First and longest pause between two looks at an in-flight mark. */
const POLL_MS = [2, 25] as const

/** Options of {@link WriteBuffer.deferred}. */
export interface DeferredOptions {
  /** Name of the hand-off table (create it with `handoffSchemaObjects(name)`), e.g. `tidesync_handoffs`. */
  table: string
  /** The IPC hash of a group's marks, e.g. `` (group) => `app:pending:${group}` ``. */
  marksKey: (group: string) => string
  /** The drizzle table of a group (a one-column primary key); undefined: its rows are left in place. */
  resolve: (group: string) => PgTable | undefined
  /** Where the marks live. @default the buffer's IPC store */
  ipc?: Ipc
  /** The database of the caller's transactions, which holds the hand-off table. @default the buffer's `default` database */
  db?: AnyPgDatabase
  /** @default the buffer's logger */
  logger?: Logger
  /** The clock (ms since epoch). @default the buffer's clock */
  now?: () => number
  /**
   * How long a mark may stay in flight before readers and writers stop waiting for it and the
   * rows it owes are handed over again (only a process that stopped between its commit and its
   * delivery leaves one that long); also the age of the rows a sweep takes.
   * @default 5000
   */
  timeoutMs?: number
  /** How often, at most, a process sweeps rows left behind (after one of its deliveries). @default 5000 */
  sweepEveryMs?: number
  /** How to wait (tests may inject one). @default setTimeout */
  sleep?: (ms: number) => Promise<void>
}

/** A write of a committed transaction owed to the buffer. */
export interface DeferredWrite {
  /** The caller's group (the server: a model name), resolved to a table by `resolve`. */
  group: string
  /** The row's primary key value. */
  key: string
  /** Last-write-wins fields (drizzle property names). Not receipted: a crash before delivery loses them. */
  fields?: Record<string, unknown>
  /** Counter deltas by column: applied exactly once, across crashes. */
  deltas?: Record<string, number>
}

/** What `stage` recorded: give it to `deliver` after the commit or to `abandon` after a rollback. */
export interface StagedWrites {
  readonly writes: ReadonlyArray<DeferredWrite & { readonly token: string; readonly receipt?: string }>
}

/**
 * "Deliver deferred writes exactly once after commit".
 *
 * **Invariant:** a counter delta of a committed transaction is applied to its table exactly
 * once, and no reader that waits on the row's mark (`settled`) sees that commit without the
 * delta (pending in the buffer, or in the table).
 *
 * How: `stage`, inside the caller's transaction, gives each write with deltas a receipt and a
 * hand-off row (so it commits, or rolls back, with the transaction), and marks each row in
 * flight. `deliver`, after the commit, gives the writes to the buffer with their receipts (the
 * buffer applies a receipt at most once, however often it is given); when the buffer refuses,
 * one transaction claims the receipts (so the buffer skips any that reached it after all),
 * writes the claimed deltas straight to the table and deletes the row. Then the marks settle
 * and the rows are deleted. A row left behind (the process died between the commit and the
 * delivery) is handed over again (`redeliver`, which skips applied receipts): by the next reader
 * that finds its mark expired, by a sweep of rows older than `timeoutMs` after a delivery, or by
 * `recover` (at start-up with `minAgeMs: 0`, when the IPC store may have lost the marks). The
 * fields of a buffered update carry no receipt: a crash before their delivery loses them, once.
 *
 * Tests: write-buffer `__tests__/contract-deferred.ts` (the invariant), server
 * `__tests__/contract/buffer.contract.ts` (end to end).
 */
export class DeferredWrites {
  readonly marks: InFlightMarks
  private readonly rows: HandoffRows
  private readonly logger: Logger
  private readonly now: () => number
  private readonly timeoutMs: number
  private readonly sweepEveryMs: number
  private readonly sleep: (ms: number) => Promise<void>
  private lastSweep = 0
  private sweeping: Promise<unknown> | undefined

  constructor(
    private readonly buffer: DeferredTarget,
    private readonly options: DeferredOptions &
      Required<Pick<DeferredOptions, 'ipc' | 'db' | 'logger' | 'now'>>,
  ) {
    this.logger = options.logger
    this.now = options.now
    this.timeoutMs = options.timeoutMs ?? 5_000
    this.sweepEveryMs = options.sweepEveryMs ?? 5_000
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
    this.marks = new InFlightMarks(options.ipc, options.marksKey, this.now)
    this.rows = new HandoffRows(options.table, buffer, options.db, options.resolve, this.logger, this.sleep)
  }

  /**
   * Inside the caller's transaction `tx` (a drizzle transaction on `db`), after its checks,
   * holding the rows' locks: records what the writes owe (receipts, hand-off rows) in `tx` and
   * marks their rows in flight. When it throws, the marks it set are settled again.
   */
  async stage(tx: unknown, writes: DeferredWrite[]): Promise<StagedWrites> {
    const staged: Array<DeferredWrite & { token: string; receipt?: string }> = []
    const owed = []
    for (const write of writes) {
      const receipt = write.deltas && Object.keys(write.deltas).length > 0 ? randomUUID() : undefined
      if (receipt) owed.push({ receipt, model: write.group, uid: write.key, deltas: write.deltas! })
      staged.push({ ...write, receipt, token: '' })
    }
    await this.rows.insert(tx, owed)
    const result: StagedWrites = { writes: [] }
    const expires = this.now() + this.timeoutMs
    try {
      for (const [group, list] of byGroup(staged)) {
        const marks: Record<string, Json> = {}
        for (const write of list) {
          write.token = this.marks.inFlight(expires)
          marks[write.key] = write.token
        }
        await this.marks.set(group, marks)
        ;(result.writes as unknown[]).push(...list)
      }
    } catch (error) {
      await this.abandon(result).catch(() => undefined)
      throw error
    }
    return result
  }

  /**
   * After the commit: gives the writes to the buffer (a refused one is written to the table
   * directly, claiming its receipts), settles the marks, deletes the hand-off rows and maybe
   * sweeps rows left behind. Throws the first write that neither took (its deltas stay owed).
   * Consecutive writes of counter deltas only go to the buffer in one call per table
   * (`incrementMany`); a write with fields is given alone, in its order.
   */
  async deliver(staged: StagedWrites): Promise<void> {
    let failure: unknown
    const handedOver: string[] = []
    type Write = StagedWrites['writes'][number]
    /** Writes of deltas only, waiting to go to the buffer together (all of one table). */
    let queued: { table: PgTable; writes: Write[] } | undefined
    const direct = async (
      table: PgTable,
      write: Write,
      fields: Record<string, unknown> | undefined,
      deltas: Record<string, number>,
      error: unknown,
    ) => {
      // An increment whose IPC request timed out may still have reached the buffer: its
      // receipt, claimed by the direct write, makes the buffer skip it then.
      try {
        await this.rows.writeDirectly(table, write, fields, deltas)
        this.logger.warn(
          `write buffer refused a committed write of ${write.group} ${write.key}: written to the table instead`,
          error,
        )
      } catch (directError) {
        this.logger.error(
          `write buffer refused a committed write of ${write.group} ${write.key}, and so did the table` +
            (write.receipt ? ' (its counter deltas stay owed: handed over again later)' : ' (it is lost)'),
          error,
          directError,
        )
        failure ??= directError
      }
    }
    const giveQueued = async () => {
      if (!queued) return
      const { table, writes } = queued
      queued = undefined
      const items = writes.flatMap((write) =>
        Object.entries(write.deltas!).map(([column, delta]) => ({
          key: write.key,
          column: column as never,
          delta,
          receipt: receiptOf(write.receipt!, column),
        })),
      )
      try {
        await this.buffer.table(table).incrementMany(items)
        for (const write of writes) handedOver.push(write.receipt!)
      } catch (error) {
        for (const write of writes) await direct(table, write, undefined, { ...write.deltas! }, error)
      }
    }
    for (const write of staged.writes) {
      const table = this.options.resolve(write.group)
      if (!table) {
        this.logger.error(`deferred write of unknown group ${write.group} not delivered`)
        continue
      }
      if (!write.fields && write.receipt) {
        if (queued && queued.table !== table) await giveQueued()
        queued ??= { table, writes: [] }
        queued.writes.push(write)
        continue
      }
      await giveQueued()
      const row = this.buffer.table(table).where(write.key)
      // What the buffer has not taken yet (a failure part-way leaves the rest to the database).
      let fields = write.fields
      const deltas = { ...(write.deltas ?? {}) }
      try {
        if (fields) {
          await row.update(fields as never)
          fields = undefined
        }
        for (const [column, delta] of Object.entries(deltas)) {
          await row.increment(column as never, delta, { receipt: receiptOf(write.receipt!, column) })
          delete deltas[column]
        }
        if (write.receipt) handedOver.push(write.receipt)
      } catch (error) {
        await direct(table, write, fields, deltas, error)
      }
    }
    await giveQueued()
    // Settle the marks first: readers and writers of these rows wait for them, while the
    // hand-off rows are only bookkeeping (one left behind is handed over again, harmlessly).
    await this.abandon(staged)
    if (handedOver.length > 0) await this.rows.forget(handedOver)
    this.maybeSweep()
    if (failure !== undefined) throw failure
  }

  /** After a rollback (or a delivery): settles the marks `stage` set, unless another writer took them over. */
  async abandon(staged: StagedWrites): Promise<void> {
    for (const [group, list] of byGroup(staged.writes)) {
      const marks: Record<string, Json> = Object.create(null)
      for (let start = 0; start < list.length; start += MARKS_PER_CALL) {
        const chunk = list.slice(start, start + MARKS_PER_CALL)
        const current = await this.marks.getMany(
          group,
          chunk.map((write) => write.key),
        )
        chunk.forEach((write, i) => {
          // Our own mark, or none (a reader that found nothing pending unmarked the row
          // meanwhile): one that expired may have been taken over by the next writer.
          if (current[i] === write.token || current[i] === null) marks[write.key] = this.marks.settledToken()
        })
      }
      await this.marks.set(group, marks)
    }
  }

  /**
   * Hands over again the deltas of hand-off rows older than `minAgeMs` (default `timeoutMs`:
   * their process died or stalled between its commit and its delivery). Younger rows may belong
   * to a delivery under way: giving them again is harmless (receipts), only wasted work, except
   * at start-up (`minAgeMs: 0`), when the IPC store may have lost the rows' marks. Returns how
   * many rows it handed over.
   */
  recover(options: { minAgeMs?: number } = {}): Promise<number> {
    return this.rows.redeliverOlder(options.minAgeMs ?? this.timeoutMs)
  }

  /**
   * The marks of `keys` (those that have one; updated in place) once none of them is in
   * flight: a reader waits here before it reads the rows' pending state. A mark in flight past
   * its expiry (its process stopped) gets what its rows owe handed over again, then a settled
   * mark (logged). Reads only the marks of `keys` (one call per chunk), not the group's hash.
   */
  async settled(group: string, keys: string[]): Promise<Record<string, Json>> {
    const marked: Record<string, Json> = Object.create(null)
    const refresh = async (list: string[]) => {
      for (let start = 0; start < list.length; start += MARKS_PER_CALL) {
        const chunk = list.slice(start, start + MARKS_PER_CALL)
        const tokens = await this.marks.getMany(group, chunk)
        chunk.forEach((key, i) => {
          const token = tokens[i]
          if (token === null || token === undefined) delete marked[key]
          else marked[key] = token
        })
      }
    }
    const watched = [...new Set(keys)]
    await refresh(watched)
    let pause: number = POLL_MS[0]
    for (;;) {
      const waiting = watched.filter((key) => inFlightUntil(marked[key]) !== null)
      if (waiting.length === 0) return marked
      const now = this.now()
      const expired = waiting.filter((key) => inFlightUntil(marked[key])! <= now)
      if (expired.length > 0) {
        // Its process stopped (or stalled) between a commit and its delivery: hand over what
        // it owed before anyone reads the row.
        await this.rows
          .redeliverRows(group, expired)
          .catch((error) =>
            this.logger.error(`could not hand over the owed counter writes of ${group}`, error),
          )
      }
      for (const key of expired) {
        this.logger.warn(
          `write buffer hand-off of ${group} ${key} still in flight after ${this.timeoutMs} ms ` +
            '(a server stopped between a commit and its hand-off?): its counter deltas were handed over again; ' +
            'the fields of a buffered update may be lost',
        )
        if ((await this.marks.get(group, key)) === marked[key])
          await this.marks.set(group, { [key]: this.marks.settledToken() })
        await refresh([key])
      }
      if (expired.length > 0) continue
      await this.sleep(pause)
      pause = Math.min(pause * 2, POLL_MS[1])
      await refresh(waiting)
    }
  }

  /** True when the row's mark is still `seen` (undefined: no mark): nothing was written to it since. */
  async stillCurrent(group: string, key: string, seen: Json | undefined): Promise<boolean> {
    return (await this.marks.get(group, key)) === (seen ?? null)
  }

  /**
   * The rows whose mark is no longer the one seen (`seen`: key -> mark, undefined for none),
   * with their mark now (null: none): empty when nothing was written to any of them since.
   * One call per chunk of rows.
   */
  async changedMarks(group: string, seen: Map<string, Json | undefined>): Promise<Map<string, Json | null>> {
    const changed = new Map<string, Json | null>()
    const keys = [...seen.keys()]
    for (let start = 0; start < keys.length; start += MARKS_PER_CALL) {
      const chunk = keys.slice(start, start + MARKS_PER_CALL)
      const tokens = await this.marks.getMany(group, chunk)
      chunk.forEach((key, i) => {
        if (tokens[i] !== (seen.get(key) ?? null)) changed.set(key, tokens[i] ?? null)
      })
    }
    return changed
  }

  /** True for the mark of a delivery in flight (its rows' pending state is not complete yet). */
  inFlight(mark: Json | null | undefined): boolean {
    return inFlightUntil(mark ?? undefined) !== null
  }

  /** Starts a sweep of rows left behind, unless one ran in this process recently. */
  private maybeSweep(): void {
    const now = this.now()
    if (this.sweeping || now - this.lastSweep < this.sweepEveryMs) return
    this.lastSweep = now
    this.sweeping = this.recover()
      .catch((error) => this.logger.warn('write buffer hand-off sweep failed (retried later)', error))
      .finally(() => {
        this.sweeping = undefined
      })
  }
}

function byGroup<T extends { group: string }>(writes: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const write of writes) {
    const list = groups.get(write.group)
    if (list) list.push(write)
    else groups.set(write.group, [write])
  }
  return groups
}
