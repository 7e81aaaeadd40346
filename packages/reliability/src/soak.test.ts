/**
 * The short soak: two tidesync server processes (Redis IPC with one key prefix, one throwaway
 * PostgreSQL database) behind a load balancer, and 6 simulated clients going online and offline
 * at random while they create, edit, delete and increment. At the end every client and the
 * database agree, every acknowledged change is there, and counters equal the sum of the
 * acknowledged increments. `npm run soak` runs the long version.
 */
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment, dropRedisPrefix } from './harness/deployment.js'
import { expectConverged } from './harness/expectations.js'
import { formatReport, runSoak } from './harness/soak.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))

describe.runIf(ready)('soak: 2 servers, Redis + PostgreSQL, 6 clients', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let deployment: Deployment | undefined
  const keyPrefix = `${uniqueId('rel_soak')}:`

  beforeAll(async () => {
    database = await createTestDatabase('rel_soak')
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

  it('converges with nothing acknowledged lost and counters exact', async () => {
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl: database.url,
      clients: 6,
      durationMs: 20_000,
      seed: 7,
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
    })
    console.log(formatReport('short soak', report))
    expectConverged(report)
    expect(report.ops).toBeGreaterThan(100)
  })
})
