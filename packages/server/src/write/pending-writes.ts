import type { Json } from '@tidesync/ipc'
import type { StagedWrites } from '@tidesync/write-buffer'
import { eq, sql } from 'drizzle-orm'
import type { TidesyncTx } from '../db/types.js'
import { TidesyncError } from '../errors.js'
import type { ResolvedModel } from '../model/resolve-models.js'

/**
 * What is pending (written to the write buffer, not yet flushed) for one row: the columns with a
 * buffered update or increments, with the value the buffer gives them (`get()`: the table's value
 * plus what is pending), and the row's mark token (a new token with every
 * buffered write, so a change between reading it and taking the record's lock is seen).
 * @internal
 */
export interface PendingRow {
  /** Null: the row has no mark (its pending state was read again under its lock). */
  token: Json
  values: Record<string, unknown>
}

/** The pending state of a row changed between reading it and taking the record's lock. */
export class PendingChangedError extends TidesyncError {
  override readonly name = 'PendingChangedError'
  constructor() {
    super('UNAVAILABLE', 'the record changed meanwhile, retry', { retryable: true })
  }
}

/**
 * A write of a committed change left for the write buffer: merged last-write-wins fields of a
 * `buffered` model, or counter deltas. @internal
 */
export interface DeferredWrite {
  model: ResolvedModel<unknown>
  uid: string
  fields?: Record<string, unknown>
  deltas?: Record<string, number>
}

/**
 * Where counter increments (and rows of `buffered` models) go. This is the seam between the
 * sync server and the write buffer:
 *
 * - `DirectWrites` (no write buffer): `col = col + delta` and updates in the change's own
 *   transaction, so they commit together with the change id (exactly once).
 * - `WriteBufferWrites`: deltas and buffered updates are handed to `@tidesync/write-buffer`
 *   only once the change's transaction committed, exactly once (the buffer's `deferred` API,
 *   see write-buffer `tables/deferred.ts`), and reads overlay the pending state.
 *
 * A write never reaches the buffer before every check of its change passed (scope before and
 * after, `canWrite`) and its transaction committed: `stageChange` only returns what to defer,
 * `commitChanges` stages it inside the transaction (`stage`), delivers it after the commit
 * (`deliver`) and drops it when the transaction rolls back (`abandon`).
 *
 * Reading pending state may read the database (the buffer's `get()` does), so it is never done
 * inside a write transaction: with PGlite (one session) that would wait on itself forever.
 * Writers read it first (`snapshot`), then confirm under the record's lock that it did not
 * change (`stillCurrent`); readers overlay it after their query (`overlay`).
 */
export interface PendingWrites {
  readonly kind: 'direct' | 'write-buffer'
  /**
   * Applies counter deltas inside the change's transaction. Returns the row after the write, or
   * null when the deltas are deferred (handed to the buffer after commit).
   */
  increment(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    deltas: Record<string, number>,
  ): Promise<Record<string, unknown> | null>
  /**
   * Writes last-write-wins fields (already merged) inside the change's transaction, holding the
   * record's lock, and returns the row after the write; or null when the fields are deferred
   * (a `buffered` model: handed to the buffer after commit).
   */
  update(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    fields: Record<string, unknown>,
  ): Promise<Record<string, unknown> | null>
  /**
   * Inside the transaction, after every change of it was staged and checked, holding the
   * records' locks: records what the writes owe in `tx` (so that it survives a crash after the
   * commit) and marks each record in flight, so writers and readers of it wait for the
   * delivery (or the rollback) before reading its pending state. Undefined: nothing deferred.
   */
  stage(tx: TidesyncTx, writes: DeferredWrite[]): Promise<StagedWrites | undefined>
  /** After the commit: hands the staged writes to the buffer, then settles their marks. */
  deliver(staged: StagedWrites | undefined): Promise<void>
  /** After a rollback: settles the marks `stage` set; nothing reaches the buffer. */
  abandon(staged: StagedWrites | undefined): Promise<void>
  /**
   * Hands over again what stopped servers left owed, older than `minAgeMs` (the buffer's
   * `deferred.recover`). Returns how many writes it handed over.
   */
  recoverHandOffs(minAgeMs?: number): Promise<number>
  /** Called once a delete of the row committed. */
  afterCommitDelete?(model: ResolvedModel<unknown>, uid: string): Promise<void>
  /**
   * True when a write of the model's rows may leave state outside the transaction (buffered
   * values, deferred deltas, a new mark token). Such a record is written at most once per
   * transaction: a second write in the same transaction would not see the first.
   */
  defersWrites(model: ResolvedModel<unknown>): boolean
  /**
   * True when `update` writes the model's rows in the change's transaction (one `UPDATE` of the
   * table): a batch may then update many rows in one statement (`writeRows`) instead.
   */
  updatesInTransaction(model: ResolvedModel<unknown>): boolean
  /** Uids of the model that may have pending state (reads must look at them whatever the filter). */
  pendingUids(model: ResolvedModel<unknown>): Promise<string[]>
  /** The pending state of rows, by uid (rows without any have no entry). Outside transactions only. */
  snapshot(model: ResolvedModel<unknown>, uids: string[]): Promise<Map<string, PendingRow>>
  /** True when nothing was written to the row since `seen` was read (`undefined`: nothing was pending). */
  stillCurrent(model: ResolvedModel<unknown>, uid: string, seen: PendingRow | undefined): Promise<boolean>
  /**
   * Inside `tx`, holding the records' row locks (`rows`: each uid's row as `tx` read it, null
   * when there is none): the records written in the buffer (or unmarked) since their pending
   * state was read (`seen`), each with its pending state read again now, inside `tx` (undefined:
   * nothing pending any more). Empty when nothing changed. Throws `PendingChangedError` when a
   * delivery to one of them is still in flight (a writer committed and has not handed its write
   * over yet: the batch runs again once it has).
   */
  refreshPending(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    seen: Map<string, PendingRow | undefined>,
    rows: Map<string, Record<string, unknown> | null>,
  ): Promise<Map<string, PendingRow | undefined>>
  /**
   * Puts pending values onto rows read from the database, in place, and returns the rows it
   * changed (their filters must be judged again). Outside transactions only.
   */
  overlay(
    model: ResolvedModel<unknown>,
    rows: Array<Record<string, unknown>>,
  ): Promise<Set<Record<string, unknown>>>
}

const NOTHING = new Set<Record<string, unknown>>()

/** Counters as one atomic `UPDATE ... SET col = col + delta` in the change's transaction. */
export class DirectWrites implements PendingWrites {
  readonly kind = 'direct' as const

  async increment(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    deltas: Record<string, number>,
  ): Promise<Record<string, unknown> | null> {
    const set: Record<string, unknown> = {}
    for (const [key, delta] of Object.entries(deltas)) {
      set[key] = sql`${model.columns.get(key)!} + ${delta}`
    }
    const rows = await tx.update(model.table).set(set).where(eq(model.uid, uid)).returning()
    return (rows[0] as Record<string, unknown> | undefined) ?? null
  }

  async update(
    tx: TidesyncTx,
    model: ResolvedModel<unknown>,
    uid: string,
    fields: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    return updateRow(tx, model, uid, fields)
  }

  defersWrites(): boolean {
    return false
  }

  updatesInTransaction(): boolean {
    return true
  }

  // Nothing is ever deferred: every write is in the change's transaction.
  async stage(): Promise<undefined> {
    return undefined
  }
  async deliver(): Promise<void> {}
  async abandon(): Promise<void> {}
  async recoverHandOffs(): Promise<number> {
    return 0
  }

  async pendingUids(): Promise<string[]> {
    return []
  }

  async snapshot(): Promise<Map<string, PendingRow>> {
    return new Map()
  }

  async stillCurrent(): Promise<boolean> {
    return true
  }

  async refreshPending(): Promise<Map<string, PendingRow | undefined>> {
    return new Map()
  }

  async overlay(): Promise<Set<Record<string, unknown>>> {
    return NOTHING
  }
}

/** One `UPDATE ... RETURNING *` of a model row. */
export async function updateRow(
  tx: TidesyncTx,
  model: ResolvedModel<unknown>,
  uid: string,
  fields: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const rows = await tx.update(model.table).set(fields).where(eq(model.uid, uid)).returning()
  return rows[0] as Record<string, unknown>
}

/**
 * Runs a write, again (up to `attempts` times) when the pending state of its record changed
 * between the snapshot and the lock.
 */
export async function retryOnPendingChange<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (!(error instanceof PendingChangedError) || attempt >= attempts) throw error
    }
  }
}
