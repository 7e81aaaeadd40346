import { IpcUnavailableError } from '@tidesync/ipc'
import { describe, expect, test } from 'vitest'
import { WriteBufferError } from '../errors.js'
import { failTimes, withFaults } from './faults.js'
import type { Harness } from './harness.js'
import { counters, events } from './schema.js'

const settled = async (promise: Promise<unknown>, ms: number) =>
  Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise((resolve) => setTimeout(() => resolve(false), ms)),
  ])

/** Locking, writes during a flush, failures, poison rows, exactly-once, unmatched rows. */
export function flushContract(h: Harness): void {
  describe('lock', () => {
    test('odac: flush() waits for the lock another process holds, then flushes (odac returned silently)', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({}, ipc)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      expect(await ipc.lock(buffer.keys.lock(t.id), 30)).toBe(true)
      const flushing = t.flush()
      expect(await settled(flushing, 200)).toBe(false)
      expect(await ipc.unlock(buffer.keys.lock(t.id))).toBe(true)
      await flushing
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 2 }])
    })

    test('odac: flush() fails with WB_LOCK_TIMEOUT when the lock never frees; close() leaves the other holder its lock (odac unlocked without checking the owner)', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({ lockWaitMs: 150 }, ipc)
      const t = buffer.table(counters)
      await t.where(1).increment('views')
      expect(await ipc.lock(buffer.keys.lock(t.id), 30)).toBe(true)
      await expect(t.flush()).rejects.toMatchObject({ code: 'WB_LOCK_TIMEOUT' })
      await expect(buffer.close()).rejects.toBeInstanceOf(WriteBufferError)
      expect(await ipc.lock(buffer.keys.lock(t.id), 30)).toBe(false) // still held by its owner
      expect(await ipc.unlock(buffer.keys.lock(t.id))).toBe(true)
    })
  })

  describe('writes during a flush', () => {
    test('odac: increments, updates and inserts that arrive during a flush are kept for the next one (odac deleted them with the flushed hash)', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({}, ipc)
      await h.env.exec('insert into wb_counters (id) values (1), (2)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 10)
      await t.where(1).update({ title: 'before' })
      const release = await h.env.block()
      const flushing = t.flush()
      // Wait until the flush has taken the pending state (it then waits for the database).
      await h.until(async () => (await ipc.keys(buffer.keys.inflightPrefix(t.id))).length > 0)
      await t.where(1).increment('views', 5)
      await t.where(1).update({ title: 'during' })
      await t.where(2).update({ title: 'during-2' })
      await t.insert({ id: 3, views: 1 })
      await release()
      const first = await flushing
      expect(first.updatedRows).toBe(1)
      expect(await h.env.query('select id, views, title from wb_counters order by id')).toEqual([
        { id: 1, views: 10, title: 'before' },
        { id: 2, views: 0, title: null },
      ])
      expect(await t.where(1).get('views')).toBe(15)
      await t.flush()
      expect(await h.env.query('select id, views, title from wb_counters order by id')).toEqual([
        { id: 1, views: 15, title: 'during' },
        { id: 2, views: 0, title: 'during-2' },
        { id: 3, views: 1, title: null },
      ])
    })

    test('two buffers on one IPC store, writing and flushing at once: exact totals', async () => {
      const ipc = await h.ipc()
      const a = await h.open({}, ipc)
      const b = await h.open({}, await h.ipc().then((other) => (h.env.ipcDriver === 'memory' ? ipc : other)))
      await h.env.exec(`insert into wb_counters (id) select g from generate_series(1, 20) g`)
      const work = async (buffer: typeof a) => {
        const t = buffer.table(counters)
        for (let round = 0; round < 10; round++) {
          const calls = []
          for (let i = 0; i < 100; i++) calls.push(t.where((i % 20) + 1).increment('views'))
          await Promise.all(calls)
          if (round % 3 === 0) await t.flush()
        }
      }
      await Promise.all([work(a), work(b)])
      await a.flush()
      await b.flush()
      expect(await h.env.query('select sum(views)::int as n from wb_counters')).toEqual([{ n: 2000 }])
    })
  })

  describe('failures', () => {
    test('odac: a failed flush keeps its data, merges it with newer writes (newer wins) and keeps insert order (odac re-queued failed inserts at the tail)', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      const e = buffer.table(events)
      await t.where(1).increment('views', 3)
      await t.where(1).update({ title: 'old' })
      await e.insert({ kind: 'A', userId: 1 })
      await e.insert({ kind: 'B', userId: 1 })
      await h.env.exec(
        'alter table wb_counters rename to wb_counters_away; alter table wb_events rename to wb_events_away',
      )
      await expect(t.flush()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await expect(e.flush()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await t.where(1).increment('views', 4)
      await t.where(1).update({ title: 'new' })
      await e.insert({ kind: 'C', userId: 1 })
      await h.env.exec(
        'alter table wb_counters_away rename to wb_counters; alter table wb_events_away rename to wb_events',
      )
      await buffer.flush()
      expect(await h.env.query('select views, title from wb_counters')).toEqual([{ views: 7, title: 'new' }])
      expect(await h.env.query('select kind from wb_events order by id')).toEqual([
        { kind: 'A' },
        { kind: 'B' },
        { kind: 'C' },
      ])
    })

    test('background flushes back off while the database fails, and report each failure', async () => {
      await h.env.exec('insert into wb_counters (id) values (1)')
      const buffer = await h.open({ flushInterval: 40, maxBackoffMs: 10_000 })
      const t = buffer.table(counters)
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      await t.where(1).increment('views')
      await new Promise((resolve) => setTimeout(resolve, 1300))
      const failures = h.errors.filter((e) => e.code === 'WB_FLUSH_FAILED').length
      // Without backoff ~30 attempts; doubling from 40 ms allows about 5.
      expect(failures).toBeGreaterThanOrEqual(2)
      expect(failures).toBeLessThanOrEqual(8)
      await h.env.exec('alter table wb_counters_away rename to wb_counters')
      await t.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 1 }])
    })

    test('a poison row in an insert batch is isolated and reported; the others are inserted; the queue moves on', async () => {
      const buffer = await h.open()
      const e = buffer.table(events)
      for (let i = 1; i <= 10; i++) await e.insert({ kind: `k${i}`, userId: i === 4 ? -1 : i })
      const report = await e.flush()
      expect(report.inserted).toBe(9)
      expect(report.deadLettered).toBe(1)
      const poison = h.errors.find((x) => x.code === 'WB_POISON_ROW')
      expect(poison?.rows).toEqual([expect.objectContaining({ kind: 'k4', userId: -1 })])
      expect(await h.env.query('select kind from wb_events order by id')).toHaveLength(9)
      expect(
        await h.env.query("select kind, payload->>'kind' as k from tidesync_write_buffer_dead_letters"),
      ).toEqual([{ kind: 'insert', k: 'k4' }])
      expect((await e.flush()).batches).toEqual([])
    })

    test('a poison row among several statements: the savepoint rolls back, each chunk is retried, only the poison row is left out', async () => {
      const buffer = await h.open()
      const e = buffer.table(events)
      const calls: Promise<void>[] = []
      for (let i = 1; i <= 1100; i++) calls.push(e.insert({ kind: `k${i}`, userId: i === 1050 ? -1 : i }))
      await Promise.all(calls)
      await h.env.exec('insert into wb_counters (id) select g from generate_series(1, 1001) g')
      const t = buffer.table(counters)
      for (let id = 1; id <= 1004; id++) calls.push(t.where(id).increment('views', 2)) // 1002..1004 do not exist
      await Promise.all(calls)
      const inserted = await e.flush()
      expect(inserted).toMatchObject({ inserted: 1099, deadLettered: 1 })
      const rows = await h.env.query<{ user_id: number }>('select user_id from wb_events order by id')
      expect(rows.map((r) => r.user_id)).toEqual(
        Array.from({ length: 1100 }, (_, i) => i + 1).filter((i) => i !== 1050),
      )
      const changed = await t.flush()
      expect(changed).toMatchObject({ updatedRows: 1001, orphaned: 3 })
      expect(await h.env.query('select sum(views)::int as n from wb_counters')).toEqual([{ n: 2002 }])
    })

    test('a poison update is isolated the same way', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_events (kind, user_id) values ('a', 1), ('b', 2), ('c', 3)`)
      const e = buffer.table(events)
      await e.where(1).update({ kind: 'A' })
      await e.where(2).update({ userId: -2 })
      await e.where(3).update({ kind: 'C' })
      const report = await e.flush()
      expect(report.updatedRows).toBe(2)
      expect(h.errors.map((x) => x.code)).toContain('WB_POISON_ROW')
      expect(await h.env.query('select kind, user_id from wb_events order by id')).toEqual([
        { kind: 'A', user_id: 1 },
        { kind: 'b', user_id: 2 },
        { kind: 'C', user_id: 3 },
      ])
    })
  })

  describe('exactly once', () => {
    test('a crash between the commit and clearing the in-flight state does not apply the batch again', async () => {
      const real = await h.ipc()
      const ipc = withFaults(real, { del: failTimes(1, 'before', (args) => String(args[0]).includes(':F:')) })
      const buffer = await h.open({}, ipc)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await t.insert({ id: 2, views: 1 })
      await expect(t.flush()).rejects.toBeInstanceOf(WriteBufferError)
      expect(await real.keys(buffer.keys.inflightPrefix(t.id))).not.toEqual([]) // left behind
      expect(await h.env.query('select id, views from wb_counters order by id')).toEqual([
        { id: 1, views: 5 },
        { id: 2, views: 1 },
      ])
      await t.flush()
      expect(await h.env.query('select id, views from wb_counters order by id')).toEqual([
        { id: 1, views: 5 },
        { id: 2, views: 1 },
      ])
      expect(await real.keys(buffer.keys.inflightPrefix(t.id))).toEqual([])
      expect(await t.where(1).get('views')).toBe(5)
    })

    test('odac: an IPC request that timed out after being applied is not retried (no double count)', async () => {
      const real = await h.ipc()
      const ipc = withFaults(real, { hincrBy: failTimes(1, 'after') })
      const buffer = await h.open({}, ipc)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      await expect(t.where(1).increment('views')).rejects.toBeInstanceOf(IpcUnavailableError)
      await t.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 1 }])
    })
  })

  describe('rows that match nothing', () => {
    test('odac: are kept and reported, applied once the row exists, dead-lettered after orphanRetries (odac dropped them)', async () => {
      const buffer = await h.open({ orphanRetries: 2 })
      const t = buffer.table(counters)
      await t.where(999).increment('views', 3)
      await t.where(999).update({ title: 'late' })
      await t.where(998).increment('views', 1)
      const first = await t.flush()
      expect(first.orphaned).toBe(2)
      expect(h.errors.filter((e) => e.code === 'WB_ROW_NOT_FOUND')).toHaveLength(1)
      await h.env.exec('insert into wb_counters (id) values (999)')
      await t.where(999).increment('views', 1)
      await t.flush()
      expect(await h.env.query('select views, title from wb_counters')).toEqual([{ views: 4, title: 'late' }])
      await t.flush() // 998: third unmatched flush > orphanRetries
      expect(await h.env.query('select kind from tidesync_write_buffer_dead_letters')).toEqual([
        { kind: 'change' },
      ])
      expect(h.errors.filter((e) => e.code === 'WB_ROW_NOT_FOUND')).toHaveLength(2)
      expect((await t.flush()).batches).toEqual([])
    })
  })
}
