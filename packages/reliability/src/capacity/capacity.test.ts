/**
 * The capacity run in small (`npm run capacity` is the real one): 1 server on Redis +
 * PostgreSQL, 20 protocol-level clients pushing single changes and batches for 5 s at a low
 * rate, pulling, 20 subscribers receiving fan-out updates, and 2 real clients. No timing
 * assertions: every acknowledged push is in the database with the values and counters it was
 * acknowledged with, every fan-out update reached every subscriber, and the real clients
 * converge with the database.
 */
import { requireServer } from '@tidesync/test-env'
import { describe, expect, it } from 'vitest'
import { parseCapacityArgs } from './options.js'
import { formatCapacity } from './report.js'
import { runCapacity } from './run.js'

const ready = (await requireServer('redis')) && (await requireServer('postgres'))

describe.runIf(ready)('capacity smoke: 1 server, 20 protocol clients, 2 real clients', () => {
  it('loses no acknowledged push, delivers every fan-out update, and the real clients converge', async () => {
    const options = parseCapacityArgs(
      [
        ...['--scenario', 'mixed', '--servers', '1', '--clients', '20', '--rate', '10', '--duration', '5'],
        ...['--subscribers', '20', '--fanout-rate', '2', '--pull-rate', '1', '--batched', '0.2'],
        ...['--batch', '5', '--real-clients', '2', '--warmup', '1', '--drain-seconds', '60', '--no-out'],
      ],
      '',
    )
    const result = await runCapacity(options)
    console.log(formatCapacity(result))

    const load = result.verification.load
    expect(load.problems).toEqual([])
    expect(load.rejected).toBe(0)
    expect(load.acknowledged).toBeGreaterThan(0)
    expect(result.load?.pushesAcknowledged).toBeGreaterThan(0)
    expect(result.load?.pullsOk).toBeGreaterThan(0)

    expect(result.fanout?.acknowledged).toBeGreaterThan(0)
    expect(result.fanout?.missing).toBe(0)

    const real = result.verification.real
    expect(real.failures).toEqual([])
    expect(real.verify?.problems).toEqual([])
    expect(real.verify?.rejected).toBe(0)
    expect(real.verify?.likesInDatabase).toBe(real.verify?.likesExpected)
    expect(real.writes).toBeGreaterThan(0)

    expect(result.servers['server-a']?.idle.sockets).toBe(20 + 20 + 1)
    expect(result.ok).toBe(true)
  })
})
