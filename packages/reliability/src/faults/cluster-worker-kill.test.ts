/**
 * Fault (c): a node:cluster worker killed while it holds a lock. Two tidesync workers share the
 * cluster IPC store in their primary (a real primary process and real forked workers, one port).
 * One worker is armed to SIGKILL itself in the middle of a write-buffer flush: after the
 * flush's database commit, before it clears the batch from the store, while it holds the flush
 * lock (TTL 30 s). The primary must release the dead worker's lock at once, so the other worker
 * flushes within seconds; the committed batch it finds in flight must not be applied twice.
 * Clients of the dead worker reconnect to the other one (the primary hands out connections).
 */
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClusterProcess } from '../harness/cluster-handle.js'
import { expectConverged } from '../harness/expectations.js'
import { until } from '../harness/ports.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = await requireServer('postgres')

describe.runIf(ready)('fault: a cluster worker is killed while it holds the flush lock', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let cluster: ClusterProcess | undefined

  beforeAll(async () => {
    database = await createTestDatabase('rel_cluster')
    cluster = await ClusterProcess.start({
      name: 'cluster',
      databaseUrl: database.url,
      writeBuffer: { flushInterval: 250, maxBackoffMs: 1000, checkpointPath: false, lockTtlSeconds: 30 },
      syncLockTtlSeconds: 30,
    })
  })

  afterAll(async () => {
    await cluster?.kill()
    await database?.drop()
  })

  it('releases the dead worker’s lock at once and applies nothing twice', async () => {
    const c = cluster!
    const timeline: Record<string, number> = {}
    const report = await runSoak({
      url: c.url,
      databaseUrl: database.url,
      clients: 5,
      durationMs: 15_000,
      seed: 31,
      flush: () => c.flush(),
      during: async () => {
        await new Promise((resolve) => setTimeout(resolve, 3000))
        const [victim, survivor] = [...c.workers.keys()] as [number, number]
        await c.arm(victim)
        const exit = await c.exited(victim, 20_000)
        timeline.killedAt = exit.at
        expect(exit.signal).toBe('SIGKILL')
        // The survivor commits a flush although the dead worker's lock had 30 s to live.
        await until(
          async () => (await c.stats(survivor)).lastFlushAt > exit.at,
          20_000,
          'a flush by the survivor',
        )
        timeline.survivorFlushMs = (await c.stats(survivor)).lastFlushAt - exit.at
        await c.fork()
      },
    })
    console.log(formatReport('cluster worker killed holding the flush lock', report))
    console.log(`  survivor's first flush ${timeline.survivorFlushMs} ms after the kill (lock TTL 30000 ms)`)
    expect(timeline.survivorFlushMs).toBeLessThan(15_000)
    expect(report.reconnectMs.count).toBeGreaterThan(0)
    expectConverged(report)
  })
})
