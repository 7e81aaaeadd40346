/**
 * Fault (a): a server SIGKILLed in the middle of syncs and restarted, twice (once each), while
 * 6 clients keep writing and going offline. Clients of the killed server reconnect through the
 * balancer to the other one. Nothing acknowledged is lost, nothing applied twice, all converge.
 */
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment, dropRedisPrefix } from '../harness/deployment.js'
import { expectConverged } from '../harness/expectations.js'
import { type ServerKill, serverKiller } from '../harness/faults.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))

describe.runIf(ready)('fault: a server is SIGKILLed mid-sync and restarted', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let deployment: Deployment | undefined
  const keyPrefix = `${uniqueId('rel_kill')}:`

  beforeAll(async () => {
    database = await createTestDatabase('rel_kill')
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

  it('loses nothing acknowledged, applies nothing twice, converges', async () => {
    const kills: ServerKill[] = []
    const before = new Map(deployment!.balancer.connections)
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl: database.url,
      clients: 6,
      durationMs: 20_000,
      seed: 11,
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
      during: serverKiller(deployment!, { times: 2, everyMs: 5000 }, kills),
    })
    console.log(formatReport('server SIGKILL', report))
    console.log(`  kills: ${JSON.stringify(kills)}`)
    for (const server of deployment!.servers) {
      const stats = await server.stats()
      console.log(`  ${server.name} logs (${stats.logCount}):\n    ${stats.logs.join('\n    ')}`)
    }
    expect(kills.length).toBeGreaterThanOrEqual(2)
    expect(new Set(kills.map((kill) => kill.server)).size).toBe(2)
    // Clients were cut off by the kills and came back (through the balancer, to the live server).
    expect(report.reconnectMs.count).toBeGreaterThan(0)
    for (const server of deployment!.servers) {
      expect(deployment!.balancer.connections.get(server.port) ?? 0).toBeGreaterThan(
        before.get(server.port) ?? 0,
      )
    }
    expectConverged(report)
  })
})
