/**
 * Fault (f): PostgreSQL refusing connections for 10 seconds. Two servers (Redis IPC) on a
 * PostgreSQL of our own (initdb into a temporary folder, pg_ctl on a spare port), stopped at once
 * (-m immediate) mid-soak and started again 10 s later. Syncs are answered with a clear
 * temporary error (UNAVAILABLE, retryable) and retried by the clients; buffered counter writes
 * fail to flush and are retried until the database is back. Nothing acknowledged is lost.
 */
import { redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment, dropRedisPrefix } from '../harness/deployment.js'
import { expectConverged } from '../harness/expectations.js'
import { canRunPostgres, OwnPostgres } from '../harness/own-postgres.js'
import { sleep } from '../harness/ports.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = canRunPostgres && (await requireServer('redis'))
if (!canRunPostgres) console.warn('[reliability] skipping the PostgreSQL outage test: no initdb/pg_ctl')

describe.runIf(ready)('fault: PostgreSQL refuses connections for 10 s', () => {
  let postgres: OwnPostgres | undefined
  let deployment: Deployment | undefined
  const keyPrefix = `${uniqueId('rel_pg')}:`
  let databaseUrl = ''

  beforeAll(async () => {
    postgres = await OwnPostgres.start()
    const admin = new pg.Client({ connectionString: postgres.url() })
    await admin.connect()
    await admin.query('CREATE DATABASE soak')
    await admin.end()
    databaseUrl = postgres.url('soak')
    deployment = await Deployment.start({
      databaseUrl,
      ipc: { driver: 'redis', url: redisUrl, keyPrefix },
      server: { pgConnectTimeoutMs: 2000 },
    })
  })

  afterAll(async () => {
    await deployment?.kill()
    await dropRedisPrefix(redisUrl, keyPrefix).catch(() => undefined)
    postgres?.destroy()
  })

  it('answers UNAVAILABLE, retries buffered writes and syncs, loses nothing', async () => {
    const outage = { at: 0, downMs: 0, errorsDuring: {} as Record<string, number> }
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl,
      clients: 5,
      durationMs: 20_000,
      seed: 61,
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
      quiesceTimeoutMs: 90_000,
      during: async ({ recorder }) => {
        await sleep(4000)
        outage.at = Date.now()
        postgres!.stop()
        await sleep(10_000)
        outage.errorsDuring = Object.fromEntries(recorder.pushErrors)
        postgres!.start()
        outage.downMs = Date.now() - outage.at
      },
    })
    const stats = await Promise.all(deployment!.servers.map((server) => server.stats()))
    console.log(formatReport('PostgreSQL refusing connections for 10 s', report))
    console.log(`  outage: ${JSON.stringify(outage)}`)
    console.log(`  buffer errors per server: ${stats.map((s) => s.bufferErrors).join(', ')}`)
    for (const [i, s] of stats.entries())
      console.log(`  server ${i} logs (${s.logCount}):\n    ${s.logs.slice(0, 6).join('\n    ')}`)
    // Pushes during the outage got the temporary error, not silence or a permanent refusal.
    expect(outage.errorsDuring.UNAVAILABLE ?? 0).toBeGreaterThan(0)
    // The write buffer failed to flush while the database was away, and retried.
    expect(stats.reduce((sum, s) => sum + s.bufferErrors, 0)).toBeGreaterThan(0)
    expectConverged(report)
  })
})
