import { CheckpointStore, restoreCheckpoint, takeCheckpoint } from '../checkpoint/checkpoint.js'
import { Journal } from '../checkpoint/journal.js'
import { type EnvFile, openEnv, releaseEnv } from '../checkpoint/lmdb-env.js'
import { readWatermarks } from '../flush/batch-ledger.js'
import { connectionOf } from '../store/keys.js'
import type { CheckpointReport } from '../types.js'
import { ensureEpoch, type RecoveryContext, replayJournal } from './recovery.js'
import type { DurabilitySettings } from './settings.js'

/**
 * How pending state survives the process (memory and cluster drivers): LMDB checkpoints, or a
 * journal of every operation, or nothing ('none': Redis keeps the state itself). Opened at
 * start-up, which also brings back what a previous life left; released at close.
 */
export class DurableState {
  /** The journal, in journal durability once opened: every write goes through it. */
  journal: Journal | undefined
  private checkpoints: CheckpointStore | undefined
  /** The LMDB file this buffer opened (released at close), if any. */
  private envFile: EnvFile | undefined
  private epoch = ''

  constructor(
    private readonly ctx: RecoveryContext,
    private readonly settings: DurabilitySettings,
    /** This process's id in the journal. */
    private readonly instance: string,
  ) {}

  get mode(): DurabilitySettings['durability'] {
    return this.settings.durability
  }

  /** Opens LMDB and restores the last checkpoint, or replays the journals of ended store lives. */
  async open(): Promise<void> {
    const { ctx } = this
    const { durability, journalFsync } = this.settings
    if (durability === 'none') return
    this.epoch = await ensureEpoch(ctx)
    const path = this.settings.checkpointPath as string
    if (durability === 'checkpoint') {
      this.checkpoints = new CheckpointStore(openEnv(path), ctx.keys.prefix)
      this.envFile = 'write-buffer.mdb'
      await restoreCheckpoint({ ...ctx, epoch: this.epoch }, this.checkpoints)
      return
    }
    const always = journalFsync === 'always'
    const env = openEnv(path, 'journal.mdb', always ? 'commit-flushed' : 'commit-only')
    this.envFile = 'journal.mdb'
    this.journal = new Journal(
      env,
      ctx.ipc,
      ctx.keys,
      this.instance,
      ctx.logger,
      always ? undefined : (journalFsync as number),
    )
    await this.journal.start(this.epoch, ctx.now())
    await replayJournal(ctx, this.journal, this.epoch)
  }

  /** Seals pending state and writes a checkpoint; null without checkpoints or when one runs. */
  async checkpoint(onStart: () => void): Promise<CheckpointReport | null> {
    if (!this.checkpoints) return null
    return takeCheckpoint({ ...this.ctx, epoch: this.epoch }, this.checkpoints, onStart)
  }

  /** Drops journal entries every instance's flushes have committed (by the ledger's watermarks). */
  async trimJournal(): Promise<void> {
    const { databases } = this.ctx
    const journal = this.journal
    if (!journal) return
    for (const instance of journal.instancesWithEntries()) {
      const tables = journal.tablesOf(instance)
      for (const connection of new Set(tables.map(connectionOf))) {
        const db = databases[connection]
        if (!db) continue
        const marks = await readWatermarks(db, [instance])
        for (const [table, seq] of marks.get(instance) ?? []) journal.trim(instance, table, seq)
      }
    }
  }

  /** Stops the journal and releases the LMDB file. */
  async release(): Promise<void> {
    this.journal?.stop()
    if (this.envFile && this.settings.checkpointPath)
      await releaseEnv(this.settings.checkpointPath, this.envFile)
  }
}
