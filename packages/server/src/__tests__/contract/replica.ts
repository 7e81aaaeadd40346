import type {
  ChangesPush,
  ClientMeta,
  FullSyncResult,
  PullResult,
  RecordWithMeta,
  Where,
} from '../../protocol.js'
import type { Tidesync } from '../../tidesync.js'
import type { TestCtx } from './env.js'

/** A minimal client: the records it holds for one model+where, kept by pulls or full syncs. */
export class Replica {
  readonly records = new Map<string, RecordWithMeta>()
  checkpoint: string | null = null

  constructor(
    readonly tidesync: Tidesync<TestCtx>,
    readonly where: Where | undefined,
    readonly ctx: TestCtx = {},
  ) {}

  metadata(): Record<string, ClientMeta> {
    const dict: Record<string, ClientMeta> = {}
    for (const [uid, { meta }] of this.records) {
      dict[uid] = { created_at: meta.created_at, updated_at: meta.updated_at, deleted_at: meta.deleted_at }
    }
    return dict
  }

  applyFull(result: FullSyncResult): void {
    for (const r of [...result.addClient, ...result.updateClient]) this.records.set(r.record.uid, r)
    for (const d of result.deleteClient) this.records.delete(d.uid)
    for (const uid of result.evictClient) this.records.delete(uid)
    this.checkpoint = result.checkpoint
  }

  applyChanges(page: Pick<PullResult, 'upserts' | 'deletes' | 'evictions'> | ChangesPush): void {
    for (const r of page.upserts) {
      const held = this.records.get(r.record.uid)
      if (!held || held.meta.rev <= r.meta.rev) this.records.set(r.record.uid, r)
    }
    for (const d of page.deletes) this.records.delete(d.uid)
    for (const uid of page.evictions) this.records.delete(uid)
  }

  async full(): Promise<FullSyncResult> {
    const result = await this.tidesync.fullSync(
      { model: 'todos', where: this.where, metadata: this.metadata() },
      this.ctx,
    )
    this.applyFull(result)
    return result
  }

  /** Pulls one page (from "0" when there is no checkpoint yet). */
  async pullPage(limit?: number): Promise<PullResult> {
    const page = await this.tidesync.pull(
      { model: 'todos', where: this.where, checkpoint: this.checkpoint ?? '0', limit },
      this.ctx,
    )
    this.applyChanges(page)
    this.checkpoint = page.checkpoint
    return page
  }

  async pullAll(limit?: number): Promise<number> {
    let pages = 0
    for (;;) {
      const page = await this.pullPage(limit)
      pages++
      if (!page.hasMore) return pages
    }
  }

  /** uid -> record, for comparisons. */
  state(): Record<string, unknown> {
    return Object.fromEntries(
      [...this.records.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([uid, r]) => [uid, r.record]),
    )
  }
}

/** What the server holds for a model+where, as a replica would. */
export async function serverState(
  tidesync: Tidesync<TestCtx>,
  where: Where | undefined,
  ctx: TestCtx = {},
): Promise<Record<string, unknown>> {
  const rows = await tidesync.services.todos!.findMany({ where }, ctx)
  return Object.fromEntries(
    rows.map((r) => [r.record.uid, r.record]).sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
  )
}
