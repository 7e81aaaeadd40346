/**
 * The child of signals.test.ts: writes INCREMENTS increments of row ROW and INSERTS inserts
 * through a buffer that never flushes on its own (no timer flush, no checkpoints: the memory IPC
 * store is the only copy), says `written`, and waits for the test's signal. HOW:
 * - 'default': the buffer's own SIGTERM/SIGINT handler (flushes, then re-raises the signal);
 * - 'opt-out': `handleSignals: false` and no handler (the signal kills at once: nothing lands);
 * - 'app-handler': the app's own SIGTERM handler closes the buffer first, then the pool and the
 *   IPC store, then exits 0 (the documented order; the buffer's handler also runs).
 */
import { createIpc } from '@tidesync/ipc'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { openWriteBuffer } from '../../write-buffer.js'
import { crashCounters, crashEvents } from './crash-schema.js'

const HOW = process.env.HOW as 'default' | 'opt-out' | 'app-handler'
const ROW = Number(process.env.ROW)
const send = (message: Record<string, unknown>) => process.send?.(message)

async function main(): Promise<void> {
  const ipc = await createIpc({ driver: 'memory' })
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 })
  const buffer = await openWriteBuffer({
    ipc,
    databases: { default: drizzle(pool) },
    flushInterval: 3_600_000,
    checkpointPath: false,
    handleSignals: HOW !== 'opt-out',
  })
  if (HOW === 'app-handler') {
    process.on('SIGTERM', async () => {
      await buffer.close()
      await pool.end()
      await ipc.close()
      process.exit(0)
    })
  }
  const counters = buffer.table(crashCounters)
  const events = buffer.table(crashEvents)
  const calls: Promise<void>[] = []
  for (let i = 0; i < Number(process.env.INCREMENTS); i++) calls.push(counters.where(ROW).increment('n'))
  for (let i = 0; i < Number(process.env.INSERTS); i++) calls.push(events.insert({ op: `${HOW}:${i}` }))
  await Promise.all(calls)
  send({ type: 'written' })
  // Stay alive (an unref'd buffer keeps nothing open) until the signal comes.
  setInterval(() => {}, 60_000)
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: String((error as Error)?.stack ?? error) })
  process.exitCode = 1
})
