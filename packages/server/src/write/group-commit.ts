import type { Core } from '../core.js'
import { addToShape, applyBatch, type CallerItem, emptyShape, fitsBatch } from './apply-batch.js'
import type { BatchOutcome } from './staged-change.js'

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
  private running = 0

  constructor(
    private readonly core: Core<TCtx>,
    private readonly maxChanges: number,
    private readonly maxTransactions: number,
  ) {}

  /** Applies one caller's changes (at most `maxChanges`, already fit for one batch). */
  submit(items: CallerItem<TCtx>[]): Promise<BatchOutcome[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ items, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.running < this.maxTransactions && this.waiting.length > 0) {
      const group = this.take()
      this.running++
      void this.run(group).finally(() => {
        this.running--
        this.pump()
      })
    }
  }

  /** The oldest waiting portion, and every later one that fits beside it. */
  private take(): Portion<TCtx>[] {
    const first = this.waiting.shift()!
    const group = [first]
    const shape = emptyShape()
    for (const item of first.items) addToShape(shape, item)
    let size = first.items.length
    for (let i = 0; i < this.waiting.length && size < this.maxChanges; ) {
      const portion = this.waiting[i]!
      const fits =
        size + portion.items.length <= this.maxChanges &&
        fitsTogether(this.core as Core, portion.items, shape)
      if (!fits) {
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
