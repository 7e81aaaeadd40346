import { afterEach, describe, expect, it } from 'vitest'
import { sleep, uniqueDbName } from '../../__tests__/helpers/idb.js'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { type LocalDb, openLocalDb } from '../db/database.js'
import { DexieLeaseLock } from '../db/lock.js'
import { systemClock, systemTimers } from '../env.js'
import { readSchema } from '../schema/model.js'

const models = readSchema(schema, modelOptions)
const opened: LocalDb[] = []
afterEach(() => {
  for (const db of opened.splice(0)) db.dexie.close()
})

async function tab(dbName: string, holder: string, leaseMs = 10_000) {
  const db = await openLocalDb(dbName, models, {})
  opened.push(db)
  return new DexieLeaseLock(db, holder, systemClock, systemTimers, { leaseMs, retryMs: 5 })
}

describe('DexieLeaseLock (cross-tab lock without Web Locks)', () => {
  it('lets one tab at a time in, also for calls from the same tab', async () => {
    const dbName = uniqueDbName()
    const tabs = [await tab(dbName, 'tab-a'), await tab(dbName, 'tab-b')]
    let inside = 0
    let maxInside = 0
    const order: string[] = []
    const work = (name: string, lock: DexieLeaseLock) =>
      lock.withLock('push', async () => {
        inside += 1
        maxInside = Math.max(maxInside, inside)
        order.push(name)
        await sleep(5)
        inside -= 1
      })
    await Promise.all(Array.from({ length: 12 }, (_, i) => work(`w${i}`, tabs[i % 2]!)))
    expect(maxInside).toBe(1)
    expect(order).toHaveLength(12)
  })

  it('frees the lease of a tab that died holding it once it expires', async () => {
    const dbName = uniqueDbName()
    const alive = await tab(dbName, 'alive', 60)
    // A tab that crashed while holding the lease: its row stays, nobody renews it.
    const db = opened[0]!
    await db.locks.put({ name: 'push', holder: 'dead', expiresAt: Date.now() + 80 })
    const started = Date.now()
    await alive.withLock('push', async () => {})
    expect(Date.now() - started).toBeGreaterThanOrEqual(60)
    expect(await db.locks.get('push')).toBeUndefined()
  })
})
