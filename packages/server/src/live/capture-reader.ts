import type { LiveChange } from '@tidesync/protocol'
import { and, eq, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { captureNames } from '../db/capture/capture-sql.js'
import { modelJoin } from '../db/sql.js'
import { rowsOf } from '../db/types.js'
import { type MetaRow, metaToWire, rowToWire } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { listenForCommits, type StopListening } from './commit-listener.js'
import { publishChanges } from './publish-changes.js'

/** Options of the capture reader (`installTidesync({ capture })`). */
export interface CaptureReaderOptions {
  /**
   * How long one server holds the reader's IPC lock without renewing it: when the reader dies,
   * another server takes over within this time (and publishes what it missed).
   * @default 10
   */
  leaseSeconds?: number
  /**
   * A safety net: the reader also looks at the change log this often, should a notification
   * be lost (a dropped LISTEN connection). Commits are learnt of by LISTEN/NOTIFY, not by this.
   * @default 2000
   */
  pollMs?: number
  /** Most captured changes read and published per model per round. @default 500 */
  pageSize?: number
}

/** State key of how far the reader published a model's captured changes. */
const cursorKey = (model: string) => `captured:${model}`

/**
 * Publishes the changes that capture logged (writes made outside tidesync's services) to every
 * server's live subscriptions, the way tidesync's own writes are published at their commit.
 *
 * One server reads at a time: the one holding the IPC lock `<keyPrefix>capture-reader`
 * (renewed every lease/3; another server takes it when it expires). The reader learns of
 * commits by LISTEN/NOTIFY (PostgreSQL and PGlite), reads each notified model's captured
 * entries past its cursor (stored in `tidesync_state`, so a new reader, or a restarted one,
 * starts where the last one stopped: nothing written while no reader ran is skipped), and
 * publishes each record once per round in its current state. Safe to read by revision:
 * capture takes the model's revision lock at commit, so revisions of a model become visible in
 * order. Published at least once: a reader that dies between publishing and storing its cursor
 * publishes that round again (clients keep the newest revision of a record).
 */
export class CaptureReader {
  private readonly lockKey: string
  private readonly leaseSeconds: number
  private readonly pollMs: number
  private readonly pageSize: number
  private leading = false
  private stopped = false
  private renewTimer: NodeJS.Timeout | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private stopListening: StopListening | undefined
  private draining: Promise<void> | undefined
  private dirty = new Set<string>()
  /** When the staging tables were last vacuumed (or that it is not allowed). */
  private vacuum: number | 'refused' = 0
  /** Cursors read while this server is the reader (only the reader moves them). */
  private readonly cursors = new Map<string, number>()

  constructor(
    private readonly core: Core,
    options: CaptureReaderOptions = {},
  ) {
    this.lockKey = `${core.keyPrefix}capture-reader`
    this.leaseSeconds = options.leaseSeconds ?? 10
    this.pollMs = options.pollMs ?? 2000
    this.pageSize = options.pageSize ?? 500
    if (!(this.leaseSeconds > 0)) throw new RangeError('capture.leaseSeconds must be > 0')
  }

  /** Whether this server is the reader now. */
  get isReader(): boolean {
    return this.leading
  }

  /** Starts competing for the reader's lock (and reading when it holds it). */
  async start(): Promise<void> {
    await this.campaign()
    this.renewTimer = setInterval(() => void this.campaign(), (this.leaseSeconds * 1000) / 3)
    this.renewTimer.unref?.()
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.renewTimer)
    await this.resign()
    await this.draining
    if (this.leading) await this.core.ipc.unlock(this.lockKey).catch(() => false)
    this.leading = false
  }

  /** Takes or renews the lock; starts or stops reading accordingly. */
  private async campaign(): Promise<void> {
    if (this.stopped) return
    let holds: boolean
    try {
      holds = this.leading
        ? await this.core.ipc.extendLock(this.lockKey, this.leaseSeconds)
        : await this.core.ipc.lock(this.lockKey, this.leaseSeconds)
    } catch (error) {
      this.core.logger.warn('capture reader: the IPC lock could not be taken or renewed', error)
      holds = false
    }
    if (this.stopped) {
      if (holds) await this.core.ipc.unlock(this.lockKey).catch(() => false)
      return
    }
    if (holds && !this.leading) await this.lead()
    else if (!holds && this.leading) await this.resign()
  }

  private async lead(): Promise<void> {
    this.leading = true
    // Another reader may have moved the cursors since this server last read.
    this.cursors.clear()
    this.core.logger.debug?.('capture reader: this server reads captured changes now')
    try {
      this.stopListening = await listenForCommits(
        this.core.db,
        captureNames(this.core.tables).channel,
        (models) => this.notify(models),
        () => this.notify([...this.core.models.keys()]),
        this.core.logger,
      )
    } catch (error) {
      this.core.logger.warn('capture reader: LISTEN failed; reading by polling only', error)
    }
    this.pollTimer = setInterval(() => this.notify([...this.core.models.keys()]), this.pollMs)
    this.pollTimer.unref?.()
    // Whatever was captured while no server read (or since this one's last round).
    this.notify([...this.core.models.keys()])
  }

  private async resign(): Promise<void> {
    if (!this.leading) return
    this.leading = false
    clearInterval(this.pollTimer)
    const stop = this.stopListening
    this.stopListening = undefined
    await stop?.().catch(() => undefined)
  }

  /** Marks models to read and starts a round unless one runs (which then runs again). */
  private notify(models: Iterable<string>): void {
    for (const model of models) if (this.core.models.has(model)) this.dirty.add(model)
    if (this.draining || this.dirty.size === 0 || !this.leading) return
    this.draining = this.drain().finally(() => {
      this.draining = undefined
      if (this.dirty.size > 0 && this.leading && !this.stopped) this.notify([])
    })
  }

  /** Reads and publishes every dirty model until each is read to its end. */
  async drain(): Promise<void> {
    await this.vacuumStaging()
    while (this.dirty.size > 0 && this.leading) {
      const model = this.dirty.values().next().value as string
      this.dirty.delete(model)
      try {
        const more = await this.readModel(this.core.models.get(model)!)
        if (more) this.dirty.add(model)
      } catch (error) {
        this.core.logger.warn(`capture reader: reading captured ${model} changes failed (retried)`, error)
        return
      }
    }
  }

  /**
   * Every captured row passes through the staging tables (inserted, then deleted at its
   * commit): dead rows that PGlite, which has no autovacuum, would keep for ever. The reader
   * vacuums them at most once a minute (cheap: they are empty but for dead rows). Where that is
   * not allowed (not the tables' owner), it stops trying and autovacuum has them.
   */
  private async vacuumStaging(): Promise<void> {
    if (this.vacuum === 'refused' || this.core.now() - this.vacuum < 60_000) return
    this.vacuum = this.core.now()
    const n = captureNames(this.core.tables)
    try {
      await this.core.db.execute(sql.raw(`VACUUM "${n.staged}", "${n.pendingTx}"`))
    } catch (error) {
      this.vacuum = 'refused'
      this.core.logger.debug(
        'capture reader: could not vacuum the staging tables; leaving them to autovacuum',
        error,
      )
    }
  }

  private async storedCursor(model: string): Promise<number> {
    const { state } = this.core.tables
    const [stored] = await this.core.db
      .select({ value: state.value })
      .from(state)
      .where(eq(state.key, cursorKey(model)))
    return Number(stored?.value ?? 0)
  }

  /** One page of a model's captured changes: published, then the cursor moved past them. */
  private async readModel(model: ResolvedModel<unknown>): Promise<boolean> {
    const { db, tables } = this.core
    const { changes, state, meta } = tables
    const cursor = this.cursors.get(model.name) ?? (await this.storedCursor(model.name))
    // Each logged change with the row before it, decoded as drizzle decodes the table's rows.
    const raw = rowsOf<Record<string, unknown>>(
      await db.execute(sql`
        SELECT c.rev AS "__rev", c.uid AS "__uid", c.op AS "__op", c.before IS NULL AS "__none", b.*
        FROM (SELECT rev, uid, op, before FROM ${changes}
              WHERE model = ${model.name} AND captured AND rev > ${cursor}
              ORDER BY rev LIMIT ${this.pageSize + 1}) c
        LEFT JOIN LATERAL jsonb_populate_record(NULL::${model.table}, c.before) b ON c.before IS NOT NULL
        ORDER BY c.rev`),
    )
    const entries = raw.map((r) => ({
      rev: Number(r.__rev),
      uid: String(r.__uid),
      op: r.__op === 'delete' ? ('delete' as const) : ('upsert' as const),
      before: r.__none === true || r.__none === 't' ? null : decodeRow(model, r),
    }))
    if (entries.length === 0) return false
    const page = entries.slice(0, this.pageSize)
    const uids = [...new Set(page.map((e) => e.uid))]
    const current = (await db
      .select({ meta, row: model.table })
      .from(meta)
      .leftJoin(model.table, modelJoin(tables, model))
      // `= ANY` on both key columns: the primary key answers it, whatever the statistics say.
      .where(
        and(
          eq(meta.model, model.name),
          sql`${meta.uid} = ANY(ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(uids)}::jsonb)))`,
        ),
      )) as Array<{
      meta: MetaRow
      row: Record<string, unknown> | null
    }>
    const live = current.filter((c) => c.row !== null && !c.meta.deletedAt).map((c) => c.row!)
    await this.core.pending.overlay(model, live)
    const now = new Map(current.map((c) => [c.meta.uid, c]))
    await publishChanges(
      this.core,
      entryChanges(model, page, now).map((change) => ({ model: model.name, change })),
    )
    const last = page[page.length - 1]!.rev
    await db
      .insert(state)
      .values({ key: cursorKey(model.name), value: last })
      .onConflictDoUpdate({
        target: state.key,
        set: { value: sql`greatest(${state.value}, excluded.value)` },
      })
    return entries.length > this.pageSize
  }
}

/** A raw row (database column names, driver values) as drizzle would return it. */
function decodeRow(model: ResolvedModel<unknown>, raw: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = {}
  for (const [key, column] of model.columns) {
    const value = raw[column.name]
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value)
  }
  return row
}

interface CapturedEntry {
  rev: number
  uid: string
  op: 'upsert' | 'delete'
  before: Record<string, unknown> | null
}

/**
 * One live change per log entry, each with its own `before` (whether a subscription held the
 * record is judged on it: a client that got the record after one change must get the delete
 * that follows). The state after an entry is the next entry's `before` for the same record, or
 * the record as it is now for its last entry; an earlier entry carries its own revision.
 */
function entryChanges(
  model: ResolvedModel<unknown>,
  page: CapturedEntry[],
  now: ReadonlyMap<string, { meta: MetaRow; row: Record<string, unknown> | null }>,
): LiveChange[] {
  const next = new Array<CapturedEntry | undefined>(page.length)
  const later = new Map<string, CapturedEntry>()
  for (let i = page.length - 1; i >= 0; i--) {
    next[i] = later.get(page[i]!.uid)
    later.set(page[i]!.uid, page[i]!)
  }
  const out: LiveChange[] = []
  page.forEach((entry, i) => {
    const state = now.get(entry.uid)
    if (!state) return
    const meta = metaToWire(state.meta)
    const before = entry.before ? rowToWire(model, entry.before) : null
    const following = next[i]
    if (!following) {
      const gone = state.meta.deletedAt !== null || state.row === null
      out.push({
        uid: entry.uid,
        op: gone ? 'delete' : 'upsert',
        before,
        after: gone ? null : rowToWire(model, state.row!),
        meta,
      })
      return
    }
    const gone = entry.op === 'delete' || following.before === null
    out.push({
      uid: entry.uid,
      op: gone ? 'delete' : 'upsert',
      before,
      after: gone ? null : rowToWire(model, following.before!),
      meta: { ...meta, rev: entry.rev, deleted_at: gone ? meta.updated_at : null },
    })
  })
  return out
}
