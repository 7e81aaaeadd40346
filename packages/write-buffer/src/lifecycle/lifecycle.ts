import type { Json } from '@tidesync/ipc'
import { asFlushError, durabilityError, WriteBufferError } from '../errors.js'
import { ensureSchema } from '../flush/batch-ledger.js'
import type { FlushScheduler } from '../flush/scheduler.js'
import type { Executor } from '../flush/sql-util.js'
import type { GroupCommit } from '../store/group-commit.js'
import type { CheckpointReport } from '../types.js'
import type { DurableState } from './durability.js'
import type { Gate } from './gate.js'
import { type RecoveryContext, restoreOpenOrphans } from './recovery.js'

/** What start-up, the timers and shutdown need from the buffer. */
export interface LifecycleContext {
  recovery: RecoveryContext
  gate: Gate
  durable: DurableState
  scheduler: FlushScheduler
  inserts: GroupCommit<Record<string, Json>>
  flushInterval: number
  checkpointInterval: number
  /** Takes a checkpoint (emitting its events); null without checkpoints. */
  checkpoint: () => Promise<CheckpointReport | null>
  report: (error: WriteBufferError) => void
  /** Stops the timers (set once they run) and removes the signal handlers. */
  stopTimers: () => void
  removeSignals: () => void
}

/**
 * Start-up: the ledger tables, then what a previous life left (checkpoint or journal, open
 * orphans of every table), then a flush of everything. Failures are reported and rethrown as
 * WriteBufferErrors.
 */
export async function start(ctx: LifecycleContext): Promise<void> {
  try {
    for (const db of Object.values(ctx.recovery.databases)) await ensureSchema(db)
    await ctx.durable.open()
    for (const entry of ctx.scheduler.all()) {
      await restoreOpenOrphans(ctx.recovery, entry.meta.id, entry.db as unknown as Executor)
    }
    ctx.gate.started = true
    await ctx.scheduler.flushAll()
    if (!ctx.gate.closing) ctx.stopTimers = startTimers(ctx)
  } catch (error) {
    const wrapped =
      error instanceof WriteBufferError
        ? error
        : new WriteBufferError(
            'WB_FLUSH_FAILED',
            `Write buffer start-up failed: ${(error as Error).message}`,
            {
              cause: error,
            },
          )
    ctx.report(wrapped)
    throw wrapped
  }
}

/** The flush timer, and the checkpoint or journal-trim timer; returns the function that stops them. */
export function startTimers(ctx: LifecycleContext): () => void {
  const timers: NodeJS.Timeout[] = []
  const every = (ms: number, fn: () => Promise<unknown>) => {
    const timer = setInterval(() => ctx.gate.track(fn()), ms)
    timer.unref()
    timers.push(timer)
  }
  every(ctx.flushInterval, () => ctx.scheduler.background())
  if (ctx.durable.mode === 'checkpoint') {
    every(ctx.checkpointInterval, () =>
      ctx.checkpoint().catch((error) => ctx.report(durabilityError('Checkpoint failed', error))),
    )
  }
  if (ctx.durable.mode === 'journal') {
    every(ctx.checkpointInterval, () =>
      ctx.durable.trimJournal().catch((error) => ctx.report(durabilityError('Journal trim failed', error))),
    )
  }
  return () => {
    for (const timer of timers) clearInterval(timer)
  }
}

/**
 * Shutdown: waits for operations in progress, drains queued inserts and the journal, flushes
 * everything, then releases LMDB. When the final flush fails, pending state is checkpointed
 * (checkpoint durability) and the error is thrown.
 */
export async function shutdown(ctx: LifecycleContext): Promise<void> {
  const { gate, durable } = ctx
  ctx.stopTimers()
  ctx.removeSignals()
  await gate.settle()
  let failure: unknown
  let started = true
  await gate.ready.catch(() => {
    started = false
  })
  if (started) {
    await ctx.inserts.drain()
    await durable.journal?.drain()
    try {
      await ctx.scheduler.flushAll()
    } catch (error) {
      failure = error
      ctx.report(asFlushError(error, undefined))
      // Keep the pending state: the checkpoint now holds everything the flush could not write.
      await ctx.checkpoint().catch((e) => ctx.report(durabilityError('Final checkpoint failed', e)))
    }
    await durable.journal?.drain()
  }
  await gate.settle()
  await durable.release()
  if (failure) throw failure
}
