/**
 * Fault (d): the only server, on the memory IPC driver (its process owns the store: it is the
 * "primary"), is SIGKILLed twice and restarted from its LMDB files. The write buffer runs in
 * journal mode: every buffered write is in the LMDB journal before it is acknowledged, and
 * start-up replays what no flush covered. Nothing acknowledged may be lost or applied twice.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Deployment } from '../harness/deployment.js'
import { expectConverged } from '../harness/expectations.js'
import { type ServerKill, serverKiller } from '../harness/faults.js'
import { formatReport, runSoak } from '../harness/soak.js'

const ready = await requireServer('postgres')

describe.runIf(ready)('fault: the memory-driver server is killed and restarted from LMDB', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>
  let deployment: Deployment | undefined
  const dir = mkdtempSync(join(tmpdir(), 'rel-lmdb-'))

  beforeAll(async () => {
    database = await createTestDatabase('rel_memory')
    deployment = await Deployment.start({
      servers: 1,
      databaseUrl: database.url,
      ipc: { driver: 'memory' },
      writeBuffer: {
        durability: 'journal',
        checkpointPath: join(dir, 'lmdb'),
        checkpointInterval: 1000,
        // Long enough that the kills find pending increments in the journal, not in the database.
        flushInterval: 2000,
      },
    })
  })

  afterAll(async () => {
    await deployment?.kill()
    await database?.drop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('journal mode: recovers every acknowledged write, applies none twice', async () => {
    const kills: ServerKill[] = []
    const report = await runSoak({
      url: deployment!.url,
      databaseUrl: database.url,
      clients: 5,
      durationMs: 15_000,
      seed: 41,
      flush: () => deployment!.flush(),
      diagnostics: () => deployment!.diagnostics(),
      during: serverKiller(deployment!, { times: 2, everyMs: 4000 }, kills),
    })
    console.log(formatReport('memory-driver server SIGKILL + LMDB journal', report))
    console.log(`  kills: ${JSON.stringify(kills)}`)
    expect(kills.length).toBeGreaterThanOrEqual(2)
    // The kills found buffered writes that only the journal held.
    expect(kills.some((kill) => kill.pendingWrites > 0)).toBe(true)
    expectConverged(report)
  })
})
