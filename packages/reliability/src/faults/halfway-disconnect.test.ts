/**
 * Fault (b): a client whose connection drops halfway through pushing a batch. It queues a few
 * hundred writes offline, goes online, and its transport is closed once the server has applied
 * part of the push; it reconnects (possibly to the other server) and pushes the batch again,
 * while the server may still be applying the first copy. Every change applies exactly once.
 */
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment, dropRedisPrefix } from '../harness/deployment.js'
import { expectConverged } from '../harness/expectations.js'
import { type BatchCut, halfwayDisconnect } from '../harness/faults.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))

describe.runIf(ready)('fault: a client disconnects halfway through pushing a batch', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let deployment: Deployment | undefined
  const keyPrefix = `${uniqueId('rel_cut')}:`

  beforeAll(async () => {
    database = await createTestDatabase('rel_cut')
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

  it('applies every change of the cut batch exactly once and converges', async () => {
    const cuts: BatchCut[] = []
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl: database.url,
      clients: 5,
      durationMs: 15_000,
      seed: 23,
      excluded: [0],
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
      during: halfwayDisconnect({ client: 0, databaseUrl: database.url, batch: 250, rounds: 2, cuts }),
    })
    console.log(formatReport('halfway disconnect', report))
    console.log(`  cuts: ${JSON.stringify(cuts)}`)
    expect(cuts).toHaveLength(2)
    // Halfway: the server had applied part of the batch, and the client's push was still
    // unanswered, when the connection dropped. (Whether the server had applied all of it by the
    // time the cut was measured depends on its speed; the runs so far cut it about a quarter in.)
    for (const cut of cuts) {
      expect(cut.appliedAtCut).toBeGreaterThan(0)
      expect(cut.pushesInFlightAtCut).toBeGreaterThan(0)
    }
    expectConverged(report)
  })
})
