import { describe, expect, test } from 'vitest'
import { WriteBufferError } from '../errors.js'
import { withFaults } from './faults.js'
import type { Harness } from './harness.js'
import { counters, events } from './schema.js'

/**
 * Checkpoints and the journal (memory/cluster drivers only; on Redis the store is durable and
 * both are skipped). A "crash" closes the memory IPC store (its content is gone, as when the
 * process dies) and opens a new buffer on a new store with the same LMDB directory. Real
 * processes killed with SIGKILL: crash.test.ts.
 */
export function durabilityContract(h: Harness): void {
  describe('durability', () => {
    test('on Redis, checkpoints and the journal are skipped', async () => {
      const buffer = await h.open({ checkpointPath: h.dir(), durability: 'journal' })
      expect(buffer.durability).toBe(h.env.ipcDriver === 'redis' ? 'none' : 'journal')
    })

    /** Checkpoints and the journal exist on the memory and cluster drivers, not on Redis. */
    const onRedis = () => h.env.ipcDriver === 'redis'

    test('checkpoint: recovered and flushed before ready; loss limited to what came after it', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = a.table(counters)
      await t.where(1).increment('views', 5)
      await a.table(events).insert({ kind: 'checkpointed', userId: 1 })
      const checkpoint = await a.checkpoint()
      expect(checkpoint?.entries).toBeGreaterThan(0)
      await t.where(1).increment('views', 100) // after the checkpoint: lost in the crash
      await ipc1.close() // crash
      const b = await h.open({ checkpointPath: dir, tables: [counters, events] }, await h.ipc())
      expect(b.durability).toBe('checkpoint')
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 5 }])
      expect(await h.env.query('select kind from wb_events')).toEqual([{ kind: 'checkpointed' }])
    })

    test('odac: a checkpoint taken before a flush never puts flushed deltas back (no double apply)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = a.table(counters)
      await t.where(1).increment('views', 5)
      await a.checkpoint() // holds the 5
      await t.flush() // applies the 5 (the checkpoint still holds it)
      await ipc1.close() // crash before the next checkpoint
      await h.open({ checkpointPath: dir, tables: [counters] }, await h.ipc())
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 5 }])
    })

    test('odac: the checkpoint is kept when part of a flush failed (odac cleared it)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      await a.table(counters).where(1).increment('views', 2)
      await a.table(events).insert({ kind: 'kept', userId: 1 })
      await h.env.exec('alter table wb_events rename to wb_events_away')
      await expect(a.flush()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await a.checkpoint()
      await ipc1.close() // crash
      await h.env.exec('alter table wb_events_away rename to wb_events')
      await h.open({ checkpointPath: dir, tables: [counters, events] }, await h.ipc())
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 2 }])
      expect(await h.env.query('select kind from wb_events')).toEqual([{ kind: 'kept' }])
    })

    test('odac: close() flushes before anything is released; when that flush fails the checkpoint keeps the writes (odac closed the store first, then wiped the checkpoint)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1), (2)')
      await a.table(counters).where(1).increment('views', 3)
      await a.close()
      expect(await h.env.query('select views from wb_counters where id = 1')).toEqual([{ views: 3 }])
      expect(await ipc1.get('probe')).toBeNull() // the IPC store is still open after close()

      const b = await h.open({ checkpointPath: dir }, ipc1)
      await b.table(counters).where(2).increment('views', 4)
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      await expect(b.close()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await ipc1.close() // the process ends
      await h.env.exec('alter table wb_counters_away rename to wb_counters')
      await h.open({ checkpointPath: dir, tables: [counters] }, await h.ipc())
      expect(await h.env.query('select id, views from wb_counters order by id')).toEqual([
        { id: 1, views: 3 },
        { id: 2, views: 4 },
      ])
    })

    test.for([1000, 'always'] as const)(
      'journal (journalFsync %s): every acknowledged write survives a crash, none is applied twice',
      async (journalFsync, ctx) => {
        if (onRedis()) return ctx.skip()
        const dir = h.dir()
        const ipc1 = await h.ipc()
        const a = await h.open({ checkpointPath: dir, durability: 'journal', journalFsync }, ipc1)
        await h.env.exec('insert into wb_counters (id) select g from generate_series(1, 10) g')
        const t = a.table(counters)
        const e = a.table(events)
        const calls: Promise<void>[] = []
        for (let i = 0; i < 200; i++) calls.push(t.where((i % 10) + 1).increment('views'))
        await Promise.all(calls)
        await t.flush() // 200 applied and covered by the watermark
        for (let i = 0; i < 50; i++) calls.push(t.where((i % 10) + 1).increment('views', 2))
        for (let i = 0; i < 5; i++) calls.push(e.insert({ kind: `j${i}`, userId: 1 }))
        calls.push(t.where(1).update({ title: 'journaled' }))
        await Promise.all(calls)
        expect(await t.where(1).get('views')).toBe(30)
        await ipc1.close() // crash: the store and its pending state are gone
        await h.open(
          { checkpointPath: dir, durability: 'journal', journalFsync, tables: [counters, events] },
          await h.ipc(),
        )
        expect(await h.env.query('select sum(views)::int as n from wb_counters')).toEqual([{ n: 300 }])
        expect(await h.env.query('select count(*)::int as n from wb_events')).toEqual([{ n: 5 }])
        expect(await h.env.query('select title from wb_counters where id = 1')).toEqual([
          { title: 'journaled' },
        ])
      },
    )

    test('journal: a restart while the store lives on (a cluster worker) replays nothing', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc = await h.ipc()
      const a = await h.open({ checkpointPath: dir, durability: 'journal' }, ipc)
      await h.env.exec('insert into wb_counters (id) values (1)')
      for (let i = 0; i < 20; i++) await a.table(counters).where(1).increment('views')
      // "a" dies without flushing; the store keeps its 20 pending increments.
      const b = await h.open({ checkpointPath: dir, durability: 'journal', tables: [counters] }, ipc)
      await b.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 20 }])
    })

    test('journal: concurrent operations share a group commit (one LMDB entry and one rpush per table and turn)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const real = await h.ipc()
      let rpushes = 0
      const ipc = withFaults(real, {
        rpush: () => {
          rpushes++
          return undefined
        },
      })
      const a = await h.open({ checkpointPath: h.dir(), durability: 'journal' }, ipc)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = a.table(counters)
      await Promise.all(Array.from({ length: 500 }, () => t.where(1).increment('views')))
      expect(rpushes).toBeGreaterThanOrEqual(1)
      expect(rpushes).toBeLessThanOrEqual(3) // not 500
      await t.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 500 }])
    })

    test('checkpoints are taken every checkpointInterval', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir, checkpointInterval: 30 }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      await a.table(counters).where(1).increment('views', 4)
      await new Promise<void>((resolve) =>
        a.on('checkpoint', (report) => {
          if (report.entries > 0) resolve()
        }),
      )
      await ipc1.close() // crash
      await h.open({ checkpointPath: dir, tables: [counters] }, await h.ipc())
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 4 }])
    })

    test('checkpoints taken after a restart replace the restored one (each store life counts generations from 1)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      await a.table(counters).where(1).increment('views', 1)
      for (let i = 0; i < 3; i++) await a.checkpoint() // a high generation on disk
      await ipc1.close() // crash
      const ipc2 = await h.ipc()
      const b = await h.open({ checkpointPath: dir, tables: [counters] }, ipc2) // restores and applies the 1
      await b.table(counters).where(1).increment('views', 10)
      expect(await b.checkpoint()).not.toBeNull() // generation 2 of this store life, stored
      await ipc2.close() // crash
      await h.open({ checkpointPath: dir, tables: [counters] }, await h.ipc())
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 11 }])
    })

    test('odac: checkpoints racing with flushes never put flushed deltas back (no double apply after a restart)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      await h.env.exec('insert into wb_counters (id) select g from generate_series(1, 10) g')
      const t = a.table(counters)
      const e = a.table(events)
      for (let round = 0; round < 6; round++) {
        const calls: Promise<void>[] = []
        for (let i = 0; i < 50; i++) calls.push(t.where((i % 10) + 1).increment('views'))
        calls.push(e.insert({ kind: `r${round}`, userId: 1 }))
        await Promise.all(calls)
        // A checkpoint on each side of the flushes: some snapshot batches the flush then applies.
        await Promise.all([a.checkpoint(), t.flush(), e.flush(), a.checkpoint()])
      }
      await ipc1.close() // crash: the last checkpoint may hold batches that are already applied
      await h.open({ checkpointPath: dir, tables: [counters, events] }, await h.ipc())
      expect(await h.env.query('select sum(views)::int as n from wb_counters')).toEqual([{ n: 300 }])
      expect(await h.env.query('select count(*)::int as n from wb_events')).toEqual([{ n: 6 }])
    })

    test('odac: rows taken by a flush that dies before its commit are not lost (odac drained the queue first)', async (ctx) => {
      if (onRedis()) return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir }, ipc1)
      const t = a.table(counters)
      for (let i = 1; i <= 5; i++) await t.insert({ id: i, views: i })
      const release = await h.env.block()
      const flushing = t.flush()
      // The flush took the queued rows and waits for the database: a checkpoint now must hold them.
      await h.until(async () => (await ipc1.keys(a.keys.inflightPrefix(t.id))).length > 0)
      expect((await a.checkpoint())?.entries).toBeGreaterThan(0)
      await ipc1.close() // the process dies before the flush commits
      await release()
      await expect(flushing).rejects.toBeInstanceOf(WriteBufferError)
      expect(await h.env.query('select count(*)::int as n from wb_counters')).toEqual([{ n: 0 }])
      await h.open({ checkpointPath: dir, tables: [counters] }, await h.ipc())
      expect(await h.env.query('select id, views from wb_counters order by id')).toEqual(
        [1, 2, 3, 4, 5].map((id) => ({ id, views: id })),
      )
    })
  })
}
