/**
 * A child of signals.test.ts: a batch job that increments row ROW forever in a bare top-level
 * loop (`for (;;) await increment()`: no catch, no I/O of its own, no handler of its own), on
 * IPC driver DRIVER ('memory', 'cluster': this process is the primary and holds the store, or
 * 'redis' under KEY_PREFIX) with DURABILITY ('checkpoint' or 'journal', LMDB in DIR) and the
 * buffer's own SIGTERM handling. After each acknowledged increment it writes the count so far
 * to COUNT_FILE with a synchronous write (so the file tells, after the process ended, exactly
 * how many increments were acknowledged). It says `looping` once LOOPING increments were
 * acknowledged, then loops on until the test's SIGTERM ends it.
 */
import { openSync, writeSync } from 'node:fs'
import { createIpc } from '@tidesync/ipc'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import type { Durability } from '../../types.js'
import { openWriteBuffer } from '../../write-buffer.js'
import { crashCounters } from './crash-schema.js'

const DRIVER = process.env.DRIVER as 'memory' | 'cluster' | 'redis'
const LOOPING = Number(process.env.LOOPING)

const ipc =
  DRIVER === 'redis'
    ? await createIpc({ driver: 'redis', url: process.env.REDIS_URL, keyPrefix: process.env.KEY_PREFIX })
    : await createIpc({ driver: DRIVER })
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 })
const buffer = await openWriteBuffer({
  ipc,
  databases: { default: drizzle(pool) },
  durability: process.env.DURABILITY as Durability,
  checkpointPath: process.env.DIR,
  onError: (error) => process.stderr.write(`write-buffer error: ${error.code} ${error.message}\n`),
})
const count = openSync(process.env.COUNT_FILE as string, 'w')
const row = buffer.table(crashCounters).where(Number(process.env.ROW))
let acknowledged = 0
for (;;) {
  await row.increment('n')
  acknowledged++
  writeSync(count, `${acknowledged}`.padEnd(16), 0)
  if (acknowledged === LOOPING) process.send?.({ type: 'looping' })
}
