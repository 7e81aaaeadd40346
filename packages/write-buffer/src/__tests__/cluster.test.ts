/**
 * Cluster test: this vitest process is the node:cluster primary (it owns the IPC store); 2 real
 * forked workers (children/cluster-worker.ts) each run a write buffer on the cluster driver and
 * increment the same rows at once, with background flushes and checkpoints racing in both
 * processes (one flush lock for the deployment). Totals are exact after the flush, and `get()`
 * in each worker agrees with the database.
 */
import cluster, { type Worker } from 'node:cluster'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createIpc } from '@tidesync/ipc'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { CLUSTER_DDL, CLUSTER_ROWS } from './children/cluster-schema.js'

const OPS = 4000

cluster.setupPrimary({
  exec: fileURLToPath(new URL('./children/cluster-worker.ts', import.meta.url)),
  execArgv: ['--import', 'tsx', '--conditions=source'],
})

type Message = { wbTest?: boolean; type?: string; error?: string; [key: string]: unknown }

function next<T extends Message>(worker: Worker, type: string, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "${type}" from worker ${worker.id}`)), timeoutMs)
    const onExit = () => done(new Error(`worker ${worker.id} exited before "${type}"`))
    const listener = (message: Message) => {
      if (!message?.wbTest) return
      if (message.type === 'failed') done(new Error(`worker ${worker.id} failed: ${message.error}`))
      else if (message.type === type) done(undefined, message as T)
    }
    const done = (error?: Error, message?: T) => {
      clearTimeout(timer)
      worker.off('message', listener)
      worker.off('exit', onExit)
      if (error) reject(error)
      else resolve(message!)
    }
    worker.on('message', listener)
    worker.once('exit', onExit)
  })
}

const hasPostgres = await requireServer('postgres')

describe.runIf(hasPostgres)('cluster: 2 forked workers on the cluster IPC driver', () => {
  const workers = new Set<Worker>()
  let primary: Awaited<ReturnType<typeof createIpc>>
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let pool: pg.Pool

  beforeAll(async () => {
    primary = await createIpc({ driver: 'cluster' }) // the primary's store, before any worker
    database = await createTestDatabase('wbcluster')
    pool = new pg.Pool({ connectionString: database.url, max: 2 })
    pool.on('error', () => {}) // idle clients terminated by the forced drop at the end
  })

  afterAll(async () => {
    const exits = [...workers].map((worker) => new Promise((resolve) => worker.once('exit', resolve)))
    for (const worker of workers) worker.process.kill('SIGKILL')
    await Promise.all(exits)
    await pool?.end()
    await database?.drop()
    await primary?.close()
  })

  test.each(['checkpoint', 'journal'] as const)(
    'both increment the same rows at once (%s durability): exact totals after the flush',
    async (durability) => {
      await pool.query('drop table if exists cluster_counters, cluster_events')
      await pool.query(CLUSTER_DDL)
      await primary.del(...(await primary.keys('wb:')))
      const dir = mkdtempSync(join(tmpdir(), `wb-cluster-${durability}-`))
      try {
        const pair = [1, 2].map((id) => {
          const worker = cluster.fork({
            WORKER: String(id),
            OPS: String(OPS),
            DATABASE_URL: database.url,
            DURABILITY: durability,
            DIR: dir,
          })
          workers.add(worker)
          worker.once('exit', () => workers.delete(worker))
          return worker
        })
        await Promise.all(pair.map((worker) => next(worker, 'ready')))
        const done = pair.map((worker) => next<{ flushes: number } & Message>(worker, 'done'))
        for (const worker of pair) worker.send({ wbTest: true, type: 'go' })
        const reports = await Promise.all(done)

        const expected = Array.from({ length: CLUSTER_ROWS }, () => 0)
        for (let i = 0; i < OPS; i++) if (i % 10 !== 9) expected[i % CLUSTER_ROWS]! += 2
        const rows = await pool.query<{ n: string }>('select n from cluster_counters order by id')
        expect(rows.rows.map((r) => Number(r.n))).toEqual(expected)
        const events = await pool.query<{ worker: number; n: number; distinct: number }>(
          'select worker, count(*)::int as n, count(distinct i)::int as distinct from cluster_events group by worker order by worker',
        )
        expect(events.rows).toEqual([
          { worker: 1, n: OPS / 10, distinct: OPS / 10 },
          { worker: 2, n: OPS / 10, distinct: OPS / 10 },
        ])
        expect(await primary.keys('wb:P:')).toEqual([])
        expect(await primary.keys('wb:F:')).toEqual([])
        // Background flushes ran while the workers wrote (which worker wins the shared lock each
        // time depends on scheduling: on a loaded machine one worker may take every flush).
        expect(reports.reduce((sum, r) => sum + r.flushes, 0)).toBeGreaterThan(0)

        const values = await Promise.all(
          pair.map((worker) => {
            const answer = next<{ values: number[] } & Message>(worker, 'values')
            worker.send({ wbTest: true, type: 'read' })
            return answer
          }),
        )
        expect(values.map((v) => v.values)).toEqual([expected, expected])

        const exits = pair.map((worker) => new Promise((resolve) => worker.once('exit', resolve)))
        for (const worker of pair) worker.send({ wbTest: true, type: 'close' })
        expect(await Promise.all(exits)).toEqual([0, 0])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
    60_000,
  )
})
