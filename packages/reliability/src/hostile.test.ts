/**
 * Bad input at scale: a hostile socket sends a bounded burst of random, malformed, oversized
 * and expensive requests at full speed to one of two servers while 4 normal clients work
 * through the balancer. The normal clients' work all completes and converges, the attacked
 * server's memory stays bounded (heapUsed measured in the server process), and the hostile
 * socket is disconnected after repeated violations (it reconnects, and is cut off again).
 */
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment, dropRedisPrefix } from './harness/deployment.js'
import { expectConverged } from './harness/expectations.js'
import { type HostileResult, runHostile } from './harness/hostile.js'
import { formatReport, runSoak, type SoakReport } from './harness/soak.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))
const MB = 1024 * 1024

describe.runIf(ready)('hostile socket at full speed beside normal clients', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let deployment: Deployment | undefined
  const keyPrefix = `${uniqueId('rel_hostile')}:`
  let hostile: HostileResult | undefined
  let report: SoakReport | undefined
  const memory = { baseline: 0, peak: 0, peakRss: 0, after: 0 }

  beforeAll(async () => {
    database = await createTestDatabase('rel_hostile')
    deployment = await Deployment.start({
      databaseUrl: database.url,
      ipc: { driver: 'redis', url: redisUrl, keyPrefix },
    })
  })

  afterAll(async () => {
    await deployment?.kill()
    await dropRedisPrefix(redisUrl, keyPrefix).catch(() => undefined)
    await database?.drop()
  })

  it('normal clients complete, the server stays up with bounded memory', async () => {
    const target = deployment!.servers[0]!
    memory.baseline = (await target.stats(true)).heapUsed
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const stats = await target.stats().catch(() => null)
        if (stats) {
          memory.peak = Math.max(memory.peak, stats.heapUsed)
          memory.peakRss = Math.max(memory.peakRss, stats.rss)
        }
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    })()
    try {
      report = await runSoak({
        url: deployment!.url,
        databaseUrl: database.url,
        clients: 4,
        durationMs: 12_000,
        seed: 71,
        flush: () => deployment!.flush(),
        diagnostics: () => deployment!.diagnostics(),
        during: async () => {
          await new Promise((resolve) => setTimeout(resolve, 1000))
          hostile = await runHostile({
            url: target.url,
            count: 2000,
            seed: 5,
            oversizeBytes: 600_000,
            timeoutMs: 40_000,
          })
        },
      })
    } finally {
      sampling = false
      await sampler
    }
    memory.after = (await target.stats(true)).heapUsed
    console.log(formatReport('normal clients beside a hostile socket', report))
    const cut = hostile!.sockets.filter((s) => s.disconnectReason === 'io server disconnect')
    console.log(
      `  hostile: ${hostile!.sent} messages, ${(hostile!.bytes / MB).toFixed(1)} MB in ${hostile!.durationMs} ms over ${hostile!.sockets.length} connection(s); answers ${JSON.stringify(hostile!.answers)}`,
    )
    console.log(
      `  cut off by the server: ${cut.length} connection(s), after ${cut.map((s) => s.answeredBeforeDisconnect).join(', ') || '-'} answers; first: ${JSON.stringify(hostile!.sockets[0])}`,
    )
    console.log(
      `  attacked server heapUsed: baseline ${(memory.baseline / MB).toFixed(1)} MB, peak ${(memory.peak / MB).toFixed(1)} MB (rss ${(memory.peakRss / MB).toFixed(0)} MB), after gc ${(memory.after / MB).toFixed(1)} MB`,
    )
    expect(target.alive).toBe(true)
    expectConverged(report)
    // Every hostile request that was answered got a typed error, nothing was written for it.
    expect(
      Object.keys(hostile!.answers).every((code) => code === code.toUpperCase() || code === 'result'),
    ).toBe(true)
    // Bounded: the burst leaves no lasting growth, and the peak stays far from exhausting the heap.
    expect(memory.after - memory.baseline).toBeLessThan(64 * MB)
    expect(memory.peak).toBeLessThan(memory.baseline + 768 * MB)
  })

  it('disconnects each hostile connection after repeated violations', () => {
    expect(hostile).toBeDefined()
    const [first] = hostile!.sockets
    expect(first).toBeDefined()
    // Cut by the server (not by itself), after it answered several violations, before it took
    // everything the socket sent, with a tidesync:error first.
    expect(first!.disconnectReason).toBe('io server disconnect')
    expect(first!.answeredBeforeDisconnect).toBeGreaterThan(1)
    expect(first!.answeredBeforeDisconnect).toBeLessThan(first!.sent)
    expect(first!.serverErrors.length).toBeGreaterThan(0)
    // Every connection that sent many requests was cut off the same way.
    for (const socket of hostile!.sockets.filter((s) => s.sent >= 100)) {
      expect(socket.disconnectReason).toBe('io server disconnect')
    }
  })
})
