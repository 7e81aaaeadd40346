import type { IpcEntry } from '@tidesync/ipc'
import type { Database, RootDatabase } from 'lmdb'
import { claimPending } from '../flush/flusher.js'
import type { LockedWorkContext } from '../store/locked-work.js'
import { asWriter } from '../store/seqlock.js'
import type { CheckpointReport } from '../types.js'

interface StoredCheckpoint {
  generation: number
  /** The IPC store life the snapshot was taken from. */
  epoch: string
  createdAt: number
  entries: IpcEntry[]
}

export interface CheckpointContext extends LockedWorkContext {
  epoch: string
}

/**
 * Checkpoints of the in-flight state in LMDB (checkpoint durability, memory/cluster drivers).
 *
 * A checkpoint first seals every table's pending keys into in-flight batches (`move`, under
 * the table lock), then snapshots the in-flight keys with one atomic `dump`. Because only
 * sealed batches are saved, and each batch id is recorded in the ledger when it is applied, a
 * checkpoint can never put back a delta that was flushed after it was taken (odac's
 * checkpoint-during-flush double apply): at restore, applied batches are recognised and cleared.
 * Generations only grow: an older snapshot never overwrites a newer one.
 */
export class CheckpointStore {
  private readonly db: Database<StoredCheckpoint, string>

  constructor(
    root: RootDatabase,
    private readonly name: string,
  ) {
    this.db = root.openDB<StoredCheckpoint, string>({ name: 'checkpoints' })
  }

  read(): StoredCheckpoint | undefined {
    return this.db.get(this.name)
  }

  /** Writes asynchronously (LMDB's writer thread); false when a newer generation is stored. */
  async write(checkpoint: StoredCheckpoint): Promise<boolean> {
    return this.db.transaction(() => {
      const current = this.db.get(this.name)
      // Generations count within one store life; a snapshot of a newer life always wins.
      if (current && current.epoch === checkpoint.epoch && current.generation > checkpoint.generation)
        return false
      this.db.put(this.name, checkpoint)
      return true
    })
  }
}

/**
 * Seals pending state and writes a checkpoint. Null when another checkpoint is running.
 * `onStart` is called once the checkpoint lock is taken: every write acknowledged before that
 * moment is in this checkpoint or already in the database.
 */
export async function takeCheckpoint(
  ctx: CheckpointContext,
  store: CheckpointStore,
  onStart?: () => void,
): Promise<CheckpointReport | null> {
  const { ipc, keys } = ctx
  if (!(await ipc.lock(keys.checkpointLock, ctx.lockTtlSeconds))) return null
  try {
    onStart?.()
    const tables = new Set<string>()
    for (const key of await ipc.keys(keys.pendingPrefix())) {
      const parsed = keys.parsePending(key)
      if (parsed) tables.add(parsed.table)
    }
    for (const table of tables) {
      await ipc.withLock(
        keys.lock(table),
        ctx.lockTtlSeconds,
        () => asWriter(ipc, keys.seqlock(table), () => claimPending({ ipc, keys, now: ctx.now }, table)),
        { waitMs: ctx.lockWaitMs },
      )
    }
    const generation = await ipc.incrBy(keys.checkpointGeneration, 1)
    const entries = await ipc.dump(keys.inflightPrefix())
    const written = await store.write({ generation, epoch: ctx.epoch, createdAt: ctx.now(), entries })
    if (!written) {
      ctx.logger.warn(`checkpoint ${generation} not stored: a newer one is on disk`)
      return null
    }
    return { generation, entries: entries.length }
  } finally {
    await ipc.unlock(keys.checkpointLock).catch(() => false)
  }
}

/**
 * Restores the last checkpoint into the IPC store, unless it was taken from this very store
 * life (a process restart with the store still alive, e.g. a cluster worker). Returns how many
 * keys were restored. The flush that follows clears batches that were already applied.
 */
export async function restoreCheckpoint(ctx: CheckpointContext, store: CheckpointStore): Promise<number> {
  const { ipc, keys } = ctx
  return ipc.withLock(
    keys.checkpointLock,
    ctx.lockTtlSeconds,
    async () => {
      const stored = store.read()
      if (!stored || stored.epoch === ctx.epoch || stored.entries.length === 0) return 0
      const byTable = new Map<string, IpcEntry[]>()
      for (const entry of stored.entries) {
        const parsed = keys.parseInflight(entry.key)
        if (!parsed) continue
        byTable.set(parsed.table, [...(byTable.get(parsed.table) ?? []), entry])
      }
      for (const [table, entries] of byTable) {
        await ipc.withLock(keys.lock(table), ctx.lockTtlSeconds, () =>
          asWriter(ipc, keys.seqlock(table), () => ipc.restore(entries)),
        )
      }
      // Mark the checkpoint as belonging to this store life, so other processes do not restore it
      // again, with generation 0: generations count within one store life, and this life's
      // counter starts again at 1, so its first checkpoint must replace this one.
      await store.write({ ...stored, epoch: ctx.epoch, generation: 0 })
      ctx.logger.info(`restored ${stored.entries.length} key(s) from checkpoint ${stored.generation}`)
      return stored.entries.length
    },
    { waitMs: ctx.lockWaitMs },
  )
}
