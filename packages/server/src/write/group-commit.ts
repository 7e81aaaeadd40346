import type { Core } from '../core.js'
import { recordKey } from '../db/locks.js'
import { addToShape, applyBatch, type CallerItem, emptyShape, fitsBatch } from './apply-batch.js'
import type { BatchOutcome } from './staged-change.js'

/** See `GroupCommitter`'s `busyBatch`. */
const BUSY_BATCH = 8

interface Portion<TCtx> {
  items: CallerItem<TCtx>[]
  resolve(outcomes: BatchOutcome[]): void
  reject(error: unknown): void
}

/**
 * Group commit: changes of many callers (pushes of different clients, service writes) share
 * transactions. At most `maxTransactions` batch transactions run at once; what arrives
 * meanwhile waits, and the next transaction takes everything waiting that fits (up to
 * `maxChanges` changes, see `fitsBatch`). So under load one commit, one revision lock and a
 * few set-based statements serve many pushes, and with little load a push runs at once.
 *
 * Each caller still gets what a transaction of its own would have given (`applyBatch`:
 * outcomes per change, ids remembered per client, per-field merging, its own scope and
 * `canWrite`). A temporary failure (connection, deadlock) fails every caller of that
 * transaction; each retries, as before. A caller's portions are submitted one after the other
 * (the push handler waits for each), so a client's changes keep their order.
 */
export class GroupCommitter<TCtx> {
  private readonly waiting: Portion<TCtx>[] = []
  /** Changes in `waiting`. */
  private waitingChanges = 0
  /** Records written by running transactions (how many of them write each). */
  private readonly held = new Map<string, number>()
  private running = 0

  /**
   * @param busyBatch While transactions run, another one starts only when at least this many
   * changes wait per running transaction; fewer wait for the next one to end (and join it).
   * Why: every transaction pays a fixed number of round trips, and under load those are what
   * the servers spend their CPU on; a transaction started for one change while others run
   * would split the changes waiting into many small commits. With nothing running, a change
   * starts at once. Not applied when `maxTransactions` is unbounded (group commit off).
   */
  constructor(
    private readonly core: Core<TCtx>,
    private readonly maxChanges: number,
    private readonly maxTransactions: number,
    private readonly busyBatch = BUSY_BATCH,
  ) {}

  /** Applies one caller's changes (at most `maxChanges`, already fit for one batch). */
  submit(items: CallerItem<TCtx>[]): Promise<BatchOutcome[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ items, resolve, reject })
      this.waitingChanges += items.length
      this.pump()
    })
  }

  private pump(): void {
    while (this.running < this.maxTransactions && this.waiting.length > 0) {
      const busy =
        this.running > 0 &&
        Number.isFinite(this.maxTransactions) &&
        this.waitingChanges < this.busyBatch * this.running
      if (busy) return
      const group = this.take()
      if (group.length === 0) return
      const keys = new Set<string>()
      for (const portion of group) {
        this.waitingChanges -= portion.items.length
        for (const { req } of portion.items) keys.add(recordKey(req.model.name, req.uid))
      }
      for (const key of keys) this.held.set(key, (this.held.get(key) ?? 0) + 1)
      this.running++
      void this.run(group).finally(() => {
        for (const key of keys) {
          const n = this.held.get(key)! - 1
          if (n === 0) this.held.delete(key)
          else this.held.set(key, n)
        }
        this.running--
        this.pump()
      })
    }
  }

  /**
   * The oldest waiting portion that can start now, and every later one that fits beside it. A
   * portion that writes a record a running transaction writes, or one a portion left waiting
   * writes, waits too: writes of one record apply in the order they were submitted, whoever
   * makes them (so last-write-wins between callers follows that order, and a transaction slot
   * is not taken by a portion that would only wait for the record's lock).
   */
  private take(): Portion<TCtx>[] {
    const group: Portion<TCtx>[] = []
    const shape = emptyShape()
    const blocked = new Set(this.held.keys())
    let size = 0
    for (let i = 0; i < this.waiting.length && size < this.maxChanges; ) {
      const portion = this.waiting[i]!
      const keys = portion.items.map(({ req }) => recordKey(req.model.name, req.uid))
      const fits =
        !keys.some((key) => blocked.has(key)) &&
        size + portion.items.length <= this.maxChanges &&
        fitsTogether(this.core as Core, portion.items, shape)
      if (!fits) {
        for (const key of keys) blocked.add(key)
        i++
        continue
      }
      for (const item of portion.items) addToShape(shape, item)
      size += portion.items.length
      group.push(portion)
      this.waiting.splice(i, 1)
    }
    return group
  }

  private async run(group: Portion<TCtx>[]): Promise<void> {
    try {
      const outcomes = await applyBatch(
        this.core,
        group.flatMap((portion) => portion.items),
      )
      let at = 0
      for (const portion of group) {
        portion.resolve(outcomes.slice(at, at + portion.items.length))
        at += portion.items.length
      }
    } catch (error) {
      for (const portion of group) portion.reject(error)
    }
  }
}

/** Whether all of `items` fit beside a batch of `shape` (and beside each other). */
function fitsTogether<TCtx>(
  core: Core,
  items: CallerItem<TCtx>[],
  shape: ReturnType<typeof emptyShape>,
): boolean {
  const trial = { records: new Map(shape.records), ids: new Set(shape.ids) }
  for (const item of items) {
    if (!fitsBatch(core, item, trial)) return false
    addToShape(trial, item)
  }
  return true
}
