import type { Journal } from '../checkpoint/journal.js'
import { openOrphans, readWatermarks } from '../flush/batch-ledger.js'
import { orphanEntries } from '../flush/flusher.js'
import type { Executor } from '../flush/sql-util.js'
import { connectionOf, newBatchId, orphanBatchId } from '../store/keys.js'
import type { LockedWorkContext } from '../store/locked-work.js'
import { asWriter } from '../store/seqlock.js'

export interface RecoveryContext extends LockedWorkContext {
  databases: Record<string, Executor>
}

/**
 * The id of the IPC store's current life. Set once per store (set-if-absent through `move`),
 * so a process can tell a store that restarted empty (memory driver, cluster primary) from one
 * that lived on while it restarted (a cluster worker, Redis).
 */
export async function ensureEpoch(ctx: RecoveryContext): Promise<string> {
  const existing = await ctx.ipc.get<string>(ctx.keys.epoch)
  if (existing) return existing
  const candidate = newBatchId(ctx.now())
  const scratch = `${ctx.keys.epoch}-${candidate}`
  await ctx.ipc.set(scratch, candidate)
  if (!(await ctx.ipc.move(scratch, ctx.keys.epoch))) await ctx.ipc.del(scratch)
  return (await ctx.ipc.get<string>(ctx.keys.epoch)) ?? candidate
}

/**
 * Brings back unmatched rows recorded in the ledger whose follow-up batch is not committed:
 * after the IPC store was lost they exist nowhere else. When the store still holds them,
 * restoring writes the same content again (the key is deterministic), so this is idempotent.
 */
export async function restoreOpenOrphans(ctx: RecoveryContext, table: string, db: Executor): Promise<number> {
  const open = await openOrphans(db, table)
  if (open.size === 0) return 0
  await ctx.ipc.withLock(
    ctx.keys.lock(table),
    ctx.lockTtlSeconds,
    () =>
      asWriter(ctx.ipc, ctx.keys.seqlock(table), async () => {
        for (const [id, orphans] of open) {
          await ctx.ipc.restore(orphanEntries(ctx.keys, table, orphanBatchId(id), orphans))
        }
      }),
    { waitMs: ctx.lockWaitMs },
  )
  return open.size
}

/** Replays journal operations of instances whose store life ended (see Journal). */
export async function replayJournal(ctx: RecoveryContext, journal: Journal, epoch: string): Promise<number> {
  return ctx.ipc.withLock(
    ctx.keys.journalLock,
    ctx.lockTtlSeconds,
    async () => {
      const { entries, instances, count } = await journal.collectReplay(epoch, async (instance, tables) => {
        const marks = new Map<string, number>()
        for (const connection of new Set(tables.map(connectionOf))) {
          const db = ctx.databases[connection]
          if (!db) {
            ctx.logger.warn(`journal holds operations for unknown connection "${connection}"`)
            continue
          }
          const read = await readWatermarks(db, [instance])
          for (const [table, seq] of read.get(instance) ?? []) marks.set(table, seq)
        }
        return marks
      })
      for (const [table, list] of entries) {
        if (!ctx.databases[connectionOf(table)]) continue
        await ctx.ipc.withLock(
          ctx.keys.lock(table),
          ctx.lockTtlSeconds,
          () => asWriter(ctx.ipc, ctx.keys.seqlock(table), () => ctx.ipc.restore(list)),
          { waitMs: ctx.lockWaitMs },
        )
      }
      await journal.markReplayed(instances, epoch)
      if (count > 0) ctx.logger.info(`replayed ${count} journaled operation(s)`)
      return count
    },
    { waitMs: ctx.lockWaitMs },
  )
}
