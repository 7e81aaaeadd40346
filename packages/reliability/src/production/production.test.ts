/**
 * The production soak in small (`npm run soak:production` is the real one): 2 servers on Redis
 * + PostgreSQL, 20 protocol-level clients pushing batches for 8 s, 1 real client, and a server
 * SIGKILLed and restarted mid-run. No timing assertions: every offered change is acknowledged
 * (the pushes the kill cut off are sent again), every acknowledged change is in the database,
 * and the real client equals the database. (The Redis and PostgreSQL faults have tests of their
 * own in src/faults; with them this smoke would outgrow its ~20 s.)
 */
import { requireServer } from '@tidesync/test-env'
import { describe, expect, it } from 'vitest'
import { formatProduction } from './report.js'
import { runProduction } from './run.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))

describe.runIf(ready)('production soak smoke: 2 servers, one SIGKILLed, 20 protocol clients', () => {
  it('acknowledges every offered change, loses none, and the real client converges', async () => {
    const result = await runProduction({
      duration: 8,
      rate: 100,
      batch: 5,
      clients: 20,
      realClients: 1,
      connect: 'balancer',
      faults: ['kill'],
      pgDownSeconds: 1,
      warmup: 0,
      windowSeconds: 2,
      drainSeconds: 60,
      inFlight: 8,
      poolSize: 4,
      seed: 3,
      out: null,
    })
    console.log(formatProduction(result))

    expect(result.problems).toEqual([])
    const load = result.verification.load
    expect(load.rejected).toBe(0)
    expect(load.unresolved).toBe(0)
    // 20 pushes/s of 5 changes for 8 s (the pacer may hand out one more at the very end).
    expect(result.load.changesOffered).toBeGreaterThanOrEqual(800)
    expect(result.load.changesAcknowledged).toBe(result.load.changesOffered)
    expect(result.load.unfinished).toBe(0)
    expect(result.faults.map((fault) => fault.fault)).toEqual(['kill'])
    expect(result.faults[0]!.restoredAtS).toBeGreaterThan(result.faults[0]!.injectedAtS)
    expect(result.servers['server-a']?.restarts).toBe(1)
    expect(result.windows).toHaveLength(5)

    const real = result.verification.real
    expect(real.failures).toEqual([])
    expect(real.verify?.problems).toEqual([])
    expect(real.writes).toBeGreaterThan(0)
    expect(result.ok).toBe(true)
  })
})
