/**
 * A node:cluster worker of cluster.test.ts: a write buffer on the cluster IPC driver (pending
 * state in the primary) and the real PostgreSQL server. On `go` it runs OPS operations from 32
 * concurrent callers over the same rows as the other worker (every 10th op an insert, the others
 * increments), with background flushes and checkpoints running in both workers; then it flushes
 * and reports. On `read` it reports `get()` of every row; on `close` it closes and exits.
 * Test messages carry `wbTest` (the IPC driver ignores untagged messages, as it must).
 */
import { createIpc } from '@tidesync/ipc'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import type { Durability } from '../../types.js'
import { openWriteBuffer } from '../../write-buffer.js'
import { CLUSTER_ROWS, clusterCounters, clusterEvents } from './cluster-schema.js'

const send = (message: Record<string, unknown>) => process.send?.({ wbTest: true, ...message })
const WORKER = Number(process.env.WORKER)
const OPS = Number(process.env.OPS)

async function main(): Promise<void> {
  const ipc = await createIpc({ driver: 'cluster' })
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 })
  const buffer = await openWriteBuffer({
    ipc,
    databases: { default: drizzle(pool) },
    durability: process.env.DURABILITY as Durability,
    checkpointPath: process.env.DIR,
    tables: [clusterCounters, clusterEvents],
    flushInterval: 30,
    checkpointInterval: 80,
    handleSignals: false,
    onError: (error) => process.stderr.write(`worker ${WORKER}: ${error.code} ${error.message}\n`),
  })
  const counters = buffer.table(clusterCounters)
  const events = buffer.table(clusterEvents)
  let flushes = 0
  buffer.on('flush', () => flushes++)

  process.on('message', (message: { wbTest?: boolean; type?: string }) => {
    if (!message?.wbTest) return
    const run = async () => {
      if (message.type === 'go') {
        let next = 0
        const caller = async () => {
          while (next < OPS) {
            const i = next++
            if (i % 10 === 9) await events.insert({ worker: WORKER, i })
            else await counters.where((i % CLUSTER_ROWS) + 1).increment('n')
          }
        }
        await Promise.all(Array.from({ length: 32 }, caller))
        await buffer.flush()
        send({ type: 'done', flushes })
      } else if (message.type === 'read') {
        const values: number[] = []
        for (let id = 1; id <= CLUSTER_ROWS; id++) values.push(Number(await counters.where(id).get('n')))
        send({ type: 'values', values })
      } else if (message.type === 'close') {
        await buffer.close()
        await pool.end()
        await ipc.close()
        process.exit(0)
      }
    }
    run().catch((error: unknown) => send({ type: 'failed', error: String((error as Error)?.stack ?? error) }))
  })
  send({ type: 'ready' })
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: String((error as Error)?.stack ?? error) })
  process.exitCode = 1
})
