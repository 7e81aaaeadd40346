/**
 * Fault (e): Redis restarted. Two servers share a redis-server of our own (append-only file,
 * fsync always, so a restart keeps what Redis acknowledged); it is SIGKILLed twice mid-soak and
 * started again after 2 s on the same port. Servers ride the outage out (commands wait for the
 * reconnect, or fail as UNAVAILABLE and clients retry). Nothing acknowledged is lost.
 */
import {
  createTestDatabase,
  hasRedisServerBinary,
  OwnRedisServer,
  requireServer,
  uniqueId,
} from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment } from '../harness/deployment.js'
import { expectConverged } from '../harness/expectations.js'
import { sleep } from '../harness/ports.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = hasRedisServerBinary && (await requireServer('postgres'))
if (!hasRedisServerBinary)
  console.warn('[reliability] skipping the Redis restart test: no redis-server binary')

describe.runIf(ready)('fault: Redis is restarted', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let redis: OwnRedisServer | undefined
  let deployment: Deployment | undefined

  beforeAll(async () => {
    database = await createTestDatabase('rel_redis')
    redis = await OwnRedisServer.start({ persistent: true })
    deployment = await Deployment.start({
      databaseUrl: database.url,
      ipc: { driver: 'redis', url: redis.url, keyPrefix: `${uniqueId('rel')}:` },
    })
  })

  afterAll(async () => {
    await deployment?.kill()
    await redis?.stop()
    await database?.drop()
  })

  it('rides out two Redis restarts with nothing acknowledged lost', async () => {
    const outages: Array<{ at: number; downMs: number }> = []
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl: database.url,
      clients: 5,
      durationMs: 16_000,
      seed: 53,
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
      during: async () => {
        for (const startAfter of [4000, 5000]) {
          await sleep(startAfter)
          const at = Date.now()
          await redis!.kill()
          await sleep(2000)
          await redis!.start()
          outages.push({ at, downMs: Date.now() - at })
        }
      },
    })
    console.log(formatReport('Redis restarted', report))
    console.log(`  outages: ${JSON.stringify(outages)}`)
    for (const server of deployment!.servers) {
      const stats = await server.stats()
      console.log(`  ${server.name} logs (${stats.logCount}):\n    ${stats.logs.slice(0, 8).join('\n    ')}`)
    }
    expect(outages).toHaveLength(2)
    expectConverged(report)
  })
})
