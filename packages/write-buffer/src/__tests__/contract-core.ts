import type { Ipc } from '@tidesync/ipc'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { WriteBufferError } from '../errors.js'
import { sqlState } from '../flush/sql-util.js'
import { createWriteBuffer, type WriteBuffer } from '../write-buffer.js'
import { uniqueId } from './env.js'
import { withFaults } from './faults.js'
import { type Harness, silentLogger } from './harness.js'
import { counters, events, noKey, stats, tokens } from './schema.js'

/** Increments, updates, inserts, get(), close, logging and the typed refusal of bad input. */
export function coreContract(h: Harness): void {
  describe('increment', () => {
    test('deltas merge per row and column; one statement for many rows (odac: one UPDATE per key)', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_counters (id) select g from generate_series(1, 300) g`)
      const t = buffer.table(counters)
      const calls: Promise<void>[] = []
      for (let i = 0; i < 3000; i++) calls.push(t.where((i % 300) + 1).increment('views'))
      for (let i = 0; i < 300; i++) calls.push(t.where(i + 1).increment('likes', 2))
      await Promise.all(calls)
      const [report] = await Promise.all([t.flush()])
      const rows = await h.env.query<{ views: number; likes: string }>(
        'select sum(views)::int as views, sum(likes)::text as likes from wb_counters',
      )
      expect(rows[0]).toEqual({ views: 3000, likes: '600' })
      expect(report.updatedRows).toBe(300)
      // ledger insert + savepoint + one UPDATE + release: far fewer than 300 statements
      expect(report.statements).toBeLessThanOrEqual(6)
    })

    test('negative and bigint deltas, numeric columns, null base counts as 0', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_counters (id, score) values (1, '10.25'), (2, null)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await t.where(1).increment('views', -2)
      await t.where(1).increment('likes', 7n)
      await t.where(1).increment('score', 3)
      await t.where(2).increment('score', 1)
      expect(await t.where(1).get('score')).toBe('13.25')
      await t.flush()
      const rows = await h.env.query<{ id: number; views: number; likes: string; score: string }>(
        'select id, views, likes::text, score::text from wb_counters order by id',
      )
      expect(rows).toEqual([
        { id: 1, views: 3, likes: '7', score: '13.25' },
        { id: 2, views: 0, likes: '0', score: '1.00' },
      ])
    })

    test('composite primary keys', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_stats (post_id, day) values (1, '2026-01-01'), (1, '2026-01-02')`)
      const t = buffer.table(stats)
      await t.where({ postId: 1, day: '2026-01-01' }).increment('views', 2)
      await t.where({ day: '2026-01-02', postId: 1 }).increment('views')
      await t.where({ postId: 1, day: '2026-01-01' }).increment('views')
      expect(await t.where({ postId: 1, day: '2026-01-01' }).get('views')).toBe(3)
      await t.flush()
      expect(await h.env.query('select day, views from wb_stats order by day')).toEqual([
        { day: '2026-01-01', views: 3 },
        { day: '2026-01-02', views: 1 },
      ])
    })
  })

  describe('a loop of awaited calls', () => {
    test('yields to the event loop now and then (on the memory driver every call answers on microtasks)', async () => {
      const buffer = await h.open({ getCacheTtl: 60_000 })
      await h.env.exec('insert into wb_counters (id) values (1)')
      const row = buffer.table(counters).where(1)
      let turns = 0
      let stop = false
      const tick = () => {
        turns++
        if (!stop) setImmediate(tick)
      }
      setImmediate(tick)
      // Redis: every call does I/O (and takes a round trip), a few suffice.
      const calls = h.env.ipcDriver === 'redis' ? 200 : 5000
      try {
        for (let i = 0; i < calls; i++) await row.increment('views')
        const afterIncrements = turns
        for (let i = 0; i < calls; i++) await row.get('views')
        expect(afterIncrements).toBeGreaterThanOrEqual(2)
        expect(turns - afterIncrements).toBeGreaterThanOrEqual(2)
      } finally {
        stop = true
      }
      expect(await row.get('views')).toBe(calls)
    })
  })

  describe('update', () => {
    test('last write wins per column; all columns of a row in one UPDATE; with increments in the same cycle', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_counters (id) values (1), (2)`)
      const t = buffer.table(counters)
      const stamp = new Date('2026-03-04T05:06:07.000Z')
      await t.where(1).update({ title: 'first' })
      await t.where(1).update({ updatedAt: stamp })
      await t.where(1).update({ title: 'second', meta: { tags: ['a', 'b'], n: 1 } })
      await t.where(1).increment('views', 4)
      await t.where(2).update({ title: 'other' })
      const report = await t.flush()
      expect(report.updatedRows).toBe(2)
      const rows = await h.env.query<Record<string, unknown>>(
        'select id, title, views, meta, updated_at from wb_counters order by id',
      )
      expect(rows[0]).toMatchObject({ id: 1, title: 'second', views: 4, meta: { tags: ['a', 'b'], n: 1 } })
      expect(new Date(rows[0]?.updated_at as string).toISOString()).toBe(stamp.toISOString())
      expect(rows[1]).toMatchObject({ id: 2, title: 'other', views: 0 })
    })

    test('an update after increments of the same column in one cycle wins; increments after it are added', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_counters (id, views) values (1, 100)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await t.where(1).update({ views: 7 })
      await t.where(1).increment('views', 1)
      expect(await t.where(1).get('views')).toBe(8)
      await t.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 8 }])
    })

    test('an update after increments of the same column replaces them across flush batches', async () => {
      const buffer = await h.open()
      await h.env.exec(`insert into wb_counters (id, views) values (1, 100)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await buffer.checkpoint().catch(() => null) // seals into a batch when checkpoints are on
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      await expect(t.flush()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await h.env.exec('alter table wb_counters_away rename to wb_counters')
      await t.where(1).update({ views: 7 })
      await t.where(1).increment('views', 1)
      expect(await t.where(1).get('views')).toBe(8)
      await t.flush()
      expect(await h.env.query('select views from wb_counters')).toEqual([{ views: 8 }])
    })
  })

  describe('insert', () => {
    test.each(['copy', 'insert'] as const)(
      'queued rows are inserted in order (insertMethod %s: one COPY, or 1,000 per INSERT), with $defaultFn run at the call',
      async (insertMethod) => {
        const buffer = await h.open({ insertMethod })
        const t = buffer.table(events)
        const calls: Promise<void>[] = []
        for (let i = 1; i <= 2500; i++) calls.push(t.insert({ kind: `k${i}`, userId: i, payload: { i } }))
        await Promise.all(calls)
        const report = await t.flush()
        expect(report.inserted).toBe(2500)
        // 'insert': 3 INSERTs + one savepoint (2 statements) + the ledger; 'copy': one COPY instead
        expect(report.statements).toBeLessThanOrEqual(insertMethod === 'copy' ? 5 : 7)
        const rows = await h.env.query<{ id: number; user_id: number }>(
          'select id, user_id from wb_events order by id',
        )
        expect(rows).toHaveLength(2500)
        expect(rows.every((r) => r.id === r.user_id)).toBe(true)
        await buffer.table(tokens).insert({ owner: 1 })
        await buffer.table(tokens).flush()
        expect(await h.env.query('select count(*)::int as n from wb_tokens')).toEqual([{ n: 1 }])
      },
    )

    test('odac: an increment/update of a row still in the insert queue is applied, not lost (affected rows are checked)', async () => {
      const buffer = await h.open()
      const t = buffer.table(counters)
      await t.insert({ id: 5 })
      await t.where(5).increment('views', 3)
      await t.where(5).update({ title: 'new' })
      await t.flush()
      expect(await h.env.query('select id, views, title from wb_counters')).toEqual([
        { id: 5, views: 3, title: 'new' },
      ])
    })

    test('odac: past maxQueueSize the queue flushes at once, under the lock (odac took none)', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({ maxQueueSize: 50 }, ipc)
      const t = buffer.table(events)
      // Someone else holds the flush lock: the size-triggered flush must wait for it.
      expect(await ipc.lock(buffer.keys.lock(t.id), 30)).toBe(true)
      for (let i = 1; i <= 60; i++) await t.insert({ kind: 'x', userId: i })
      await new Promise((resolve) => setTimeout(resolve, 150))
      expect(await h.env.query('select count(*)::int as n from wb_events')).toEqual([{ n: 0 }])
      expect(await ipc.unlock(buffer.keys.lock(t.id))).toBe(true)
      await h.until(
        async () =>
          (await h.env.query<{ n: number }>('select count(*)::int as n from wb_events'))[0]?.n === 60,
      )
    })

    test('the inserts of one event-loop turn reach the IPC store in one call, in order', async () => {
      const real = await h.ipc()
      let rpushes = 0
      const ipc = withFaults(real, {
        rpush: () => {
          rpushes++
          return undefined
        },
      })
      const buffer = await h.open({}, ipc)
      const e = buffer.table(events)
      await Promise.all(Array.from({ length: 500 }, (_, i) => e.insert({ kind: 'x', userId: i + 1 })))
      expect(rpushes).toBeGreaterThanOrEqual(1)
      expect(rpushes).toBeLessThanOrEqual(3) // not 500
      await e.flush()
      const rows = await h.env.query<{ user_id: number }>('select user_id from wb_events order by id')
      expect(rows.map((r) => r.user_id)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
    })

    test('a tight loop of awaited inserts past maxQueueSize does not starve the flush it starts', async () => {
      const buffer = await h.open({ maxQueueSize: 100 })
      const t = buffer.table(events)
      let flushedDuringLoop = 0
      buffer.on('flush', (report) => {
        flushedDuringLoop += report.inserted
      })
      // No I/O of its own: with the memory driver every call answers on microtasks.
      for (let i = 1; i <= 1500; i++) await t.insert({ kind: 'x', userId: i })
      expect(flushedDuringLoop).toBeGreaterThan(0)
      await t.flush()
      expect(await h.env.query('select count(*)::int as n from wb_events')).toEqual([{ n: 1500 }])
    })

    test('odac: a size-triggered flush that fails is reported, not swallowed', async () => {
      const buffer = await h.open({ maxQueueSize: 5 })
      const t = buffer.table(events)
      await h.env.exec('alter table wb_events rename to wb_events_away')
      for (let i = 1; i <= 6; i++) await t.insert({ kind: 'x', userId: i })
      await h.until(() => h.errors.some((e) => e.code === 'WB_FLUSH_FAILED'))
      await h.env.exec('alter table wb_events_away rename to wb_events')
      await t.flush()
      expect(await h.env.query('select count(*)::int as n from wb_events')).toEqual([{ n: 6 }])
    })
  })

  describe('get', () => {
    test('database value + pending delta, or the pending value; no read when the base is known', async () => {
      const buffer = await h.open({ getCacheTtl: 60_000 })
      await h.env.exec(`insert into wb_counters (id, views, title) values (1, 4500, 'db')`)
      const t = buffer.table(counters)
      for (let i = 0; i < 27; i++) await t.where(1).increment('views')
      const before = h.env.queries.count
      expect(await t.where(1).get('views')).toBe(4527)
      expect(h.env.queries.count).toBe(before + 1)
      await t.where(1).increment('views')
      expect(await t.where(1).get('views')).toBe(4528)
      expect(h.env.queries.count).toBe(before + 1) // cached base
      await t.where(1).update({ title: 'pending' })
      expect(await t.where(1).get('title')).toBe('pending')
      expect(h.env.queries.count).toBe(before + 1) // pending value: no read
      await t.flush()
      expect(await t.where(1).get('views')).toBe(4528) // the flush dropped the cached base
      expect(await t.where(404).get('views')).toBeNull()
    })

    test('odac: the cached base of get() expires (odac never expired it)', async () => {
      let now = Date.now()
      const buffer = await h.open({ getCacheTtl: 1000, now: () => now })
      await h.env.exec(`insert into wb_counters (id, views) values (1, 10)`)
      const t = buffer.table(counters)
      expect(await t.where(1).get('views')).toBe(10)
      await h.env.exec('update wb_counters set views = 20') // a write that bypasses the buffer
      expect(await t.where(1).get('views')).toBe(10)
      now += 1001
      expect(await t.where(1).get('views')).toBe(20)
    })

    test('odac: a failed read of get() is thrown and never cached (odac cached 0)', async () => {
      const buffer = await h.open({ getCacheTtl: 60_000 })
      await h.env.exec(`insert into wb_counters (id, views) values (1, 10)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      await expect(t.where(1).get('views')).rejects.toThrow()
      await h.env.exec('alter table wb_counters_away rename to wb_counters')
      expect(await t.where(1).get('views')).toBe(12)
    })

    test('a failed database read rejects with WB_READ_FAILED, the database error as its cause (missing table)', async () => {
      const buffer = await h.open()
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      try {
        const caught = await t
          .where(1)
          .get('views')
          .then(
            () => undefined,
            (error: unknown) => error,
          )
        expect(caught).toBeInstanceOf(WriteBufferError)
        expect(caught).toMatchObject({ code: 'WB_READ_FAILED', table: t.id })
        const cause = (caught as WriteBufferError).cause
        expect(cause).toBeInstanceOf(Error)
        expect(cause).not.toBeInstanceOf(WriteBufferError)
        expect(sqlState(cause)).toBe('42P01') // undefined_table
        expect((caught as Error).message).toContain('wb_counters')
      } finally {
        await h.env.exec('alter table wb_counters_away rename to wb_counters')
      }
    })

    test('a database read that times out rejects with WB_READ_FAILED (statement_timeout; PostgreSQL server)', async (ctx) => {
      const timed = h.env.withStatementTimeout?.(150)
      if (!timed) return ctx.skip() // PGlite: one session in this process, no server-side timeout
      const buffer = await h.open({ databases: { default: timed, second: h.env.second } })
      await h.env.exec(`insert into wb_counters (id, views) values (1, 10)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      const release = await h.env.blockReads!()
      let caught: unknown
      try {
        caught = await t
          .where(1)
          .get('views')
          .then(
            () => undefined,
            (error: unknown) => error,
          )
      } finally {
        await release()
      }
      expect(caught).toBeInstanceOf(WriteBufferError)
      expect(caught).toMatchObject({ code: 'WB_READ_FAILED', table: t.id })
      expect(sqlState((caught as WriteBufferError).cause)).toBe('57014') // query_canceled
      expect(await t.where(1).get('views')).toBe(12) // not cached, nothing lost
    })

    test.each(['none', 'checkpoint', 'journal'] as const)(
      'a row still queued for insert: its queued values (or column defaults) plus pending changes, as the flush will write them (%s durability)',
      async (durability) => {
        const buffer = await h.open(
          durability === 'none' ? {} : { checkpointPath: h.dir(), durability, getCacheTtl: 60_000 },
        )
        const t = buffer.table(counters)
        await t.insert({ id: 7, views: 1 })
        await t.where(7).increment('views', 4)
        expect(await t.where(7).get('views')).toBe(5)
        expect(await t.where(7).get('likes')).toBe(0) // the column default
        expect(await t.where(7).get('title')).toBeNull()
        await t.where(7).update({ title: 'pending' })
        await t.where(7).increment('likes', 2)
        expect(await t.where(7).get('title')).toBe('pending')
        expect(await t.where(7).get('likes')).toBe(2)
        // A change given before the insert is applied after it too (inserts go first).
        await t.where(8).increment('views', 3)
        await t.insert({ id: 8, views: 10, title: 'eight' })
        expect(await t.where(8).get('views')).toBe(13)
        // Composite keys.
        const s = buffer.table(stats)
        await s.insert({ postId: 1, day: '2026-01-01', views: 2 })
        await s.where({ postId: 1, day: '2026-01-01' }).increment('views')
        expect(await s.where({ postId: 1, day: '2026-01-01' }).get('views')).toBe(3)
        expect(await s.where({ postId: 1, day: '2026-01-02' }).get('views')).toBeNull()
        // Sealed into an in-flight batch (checkpoint durability): still counted.
        if (buffer.durability === 'checkpoint') await buffer.checkpoint()
        expect(await t.where(7).get('views')).toBe(5)
        // A row the database already holds: the queued insert will be refused, the database row counts.
        await h.env.exec(`insert into wb_counters (id, views) values (9, 100)`)
        await t.insert({ id: 9, views: 1 })
        await t.where(9).increment('views', 2)
        expect(await t.where(9).get('views')).toBe(102)
        const expected = { 7: [5, 2, 'pending'], 8: [13, 0, 'eight'], 9: [102, 0, null] }
        for (const [id, [views, likes, title]] of Object.entries(expected)) {
          expect([
            await t.where(Number(id)).get('views'),
            await t.where(Number(id)).get('likes'),
            await t.where(Number(id)).get('title'),
          ]).toEqual([views, likes, title])
        }
        await buffer.flush()
        const rows = await h.env.query<{ id: number; views: number; likes: string; title: string | null }>(
          'select id, views, likes::text, title from wb_counters order by id',
        )
        expect(rows).toEqual(
          Object.entries(expected).map(([id, [views, likes, title]]) => ({
            id: Number(id),
            views,
            likes: String(likes),
            title,
          })),
        )
        expect(await s.where({ postId: 1, day: '2026-01-01' }).get('views')).toBe(3)
        for (const [id, [views]] of Object.entries(expected))
          expect(await t.where(Number(id)).get('views')).toBe(views)
      },
    )
  })

  describe('close', () => {
    test('calls made once close() began reject with WB_CLOSED; what came before is flushed', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const row = buffer.table(counters).where(1)
      await row.increment('views', 2)
      const closing = buffer.close()
      const calls = [
        row.increment('views'),
        row.update({ title: 'late' }),
        buffer.table(events).insert({ kind: 'late', userId: 1 }),
        row.get('views'),
        buffer.flush(),
        buffer.table(counters).flush(),
      ]
      const outcomes = await Promise.allSettled(calls)
      await closing
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected')
        expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'WB_CLOSED' })
      }
      expect(await h.env.query('select views, title from wb_counters')).toEqual([{ views: 2, title: null }])
    })
  })

  describe('logging', () => {
    /** Makes the next size-triggered flush fail in the background (no caller to reject). */
    const failInBackground = async (buffer: WriteBuffer) => {
      await h.env.exec('alter table wb_events rename to wb_events_away')
      for (let i = 1; i <= 3; i++) await buffer.table(events).insert({ kind: 'x', userId: i })
    }
    const restore = () => h.env.exec('alter table wb_events_away rename to wb_events')

    test('a failure nobody listens for goes to the logger, its message without a prefix', async () => {
      const lines: string[] = []
      const logger = {
        ...silentLogger,
        warn: (message: string) => void lines.push(`warn ${message}`),
        error: (message: string) => void lines.push(`error ${message}`),
      }
      const buffer = await h.open({ maxQueueSize: 2, logger, onError: undefined })
      try {
        await failInBackground(buffer)
        await h.until(() => lines.length > 0)
      } finally {
        await restore()
      }
      expect(lines[0]).toMatch(/^error Flush of \S+ failed: /)
      for (const line of lines) expect(line).not.toMatch(/tidesync\/write-buffer|write-buffer:/)
    })

    test('the default logger prefixes [tidesync/write-buffer], once', async () => {
      const printed: unknown[][] = []
      const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
        printed.push(args)
      })
      try {
        const buffer = await h.open({ maxQueueSize: 2, logger: undefined, onError: undefined })
        try {
          await failInBackground(buffer)
          await h.until(() => printed.length > 0)
        } finally {
          await restore()
        }
      } finally {
        spy.mockRestore()
      }
      expect(printed[0]?.[0]).toMatch(/^\[tidesync\/write-buffer\] Flush of \S+ failed: /)
      expect(String(printed[0]?.[0]).match(/tidesync\/write-buffer|write-buffer:/g)).toHaveLength(1)
      expect(printed[0]?.[1]).toBeInstanceOf(WriteBufferError)
    })
  })

  describe('primary keys', () => {
    test('a table that declares none uses the primaryKey option (default "id"); a table option comes first', async () => {
      await h.env.exec(`insert into wb_nokey (id, code) values (1, 'a'), (2, 'b')`)
      const byDefault = await h.open()
      await byDefault.table(noKey).where(1).increment('hits', 2)
      await byDefault.flush()
      const byOption = await h.open({ primaryKey: 'code' })
      await byOption.table(noKey).where('b').increment('hits', 3)
      await byOption.flush()
      const byTable = await h.open({ primaryKey: 'id' })
      await byTable
        .table(noKey, { primaryKey: ['code'] })
        .where({ code: 'a' })
        .increment('hits')
      await byTable.flush()
      expect(await h.env.query('select code, hits from wb_nokey order by code')).toEqual([
        { code: 'a', hits: 3 },
        { code: 'b', hits: 3 },
      ])
      expect(() => byDefault.table(noKey, { primaryKey: 'nope' })).toThrow(WriteBufferError)
    })
  })

  describe('named connections', () => {
    test('a table on a named connection flushes to that database', async () => {
      const buffer = await h.open()
      await buffer.table(events, { connection: 'second' }).insert({ kind: 'analytics', userId: 1 })
      await buffer.table(events).insert({ kind: 'main', userId: 1 })
      await buffer.flush()
      expect(await h.env.query('select kind from wb_events')).toEqual([{ kind: 'main' }])
      expect(await h.env.querySecond('select kind from wb_events')).toEqual([{ kind: 'analytics' }])
      expect(() => buffer.table(events, { connection: 'nope' })).toThrow(WriteBufferError)
    })
  })

  describe('bad input is refused at the call and queues nothing', () => {
    const cases: [string, string, (b: WriteBuffer) => unknown][] = [
      [
        'unknown column (increment)',
        'WB_UNKNOWN_COLUMN',
        (b) =>
          b
            .table(counters)
            .where(1)
            .increment('nope' as 'views'),
      ],
      [
        'unknown column (get)',
        'WB_UNKNOWN_COLUMN',
        (b) =>
          b
            .table(counters)
            .where(1)
            .get('nope' as 'views'),
      ],
      ['NaN delta', 'WB_INVALID_DELTA', (b) => b.table(counters).where(1).increment('views', Number.NaN)],
      [
        '-Infinity delta',
        'WB_INVALID_DELTA',
        (b) => b.table(counters).where(1).increment('views', Number.NEGATIVE_INFINITY),
      ],
      [
        'null delta',
        'WB_INVALID_DELTA',
        (b) =>
          b
            .table(counters)
            .where(1)
            .increment('views', null as never),
      ],
      [
        'bigint delta beyond the safe range',
        'WB_INVALID_DELTA',
        (b) =>
          b
            .table(counters)
            .where(1)
            .increment('likes', 2n ** 60n),
      ],
      [
        'Infinity delta',
        'WB_INVALID_DELTA',
        (b) => b.table(counters).where(1).increment('views', Number.POSITIVE_INFINITY),
      ],
      ['fractional delta', 'WB_INVALID_DELTA', (b) => b.table(counters).where(1).increment('views', 1.5)],
      [
        'string delta',
        'WB_INVALID_DELTA',
        (b) =>
          b
            .table(counters)
            .where(1)
            .increment('views', '1' as unknown as number),
      ],
      [
        'increment of a text column',
        'WB_NOT_NUMERIC',
        (b) =>
          b
            .table(counters)
            .where(1)
            .increment('title' as 'views'),
      ],
      ['update with no fields', 'WB_EMPTY_UPDATE', (b) => b.table(counters).where(1).update({})],
      [
        'update with only undefined fields',
        'WB_EMPTY_UPDATE',
        (b) => b.table(counters).where(1).update({ title: undefined }),
      ],
      [
        'update of an unknown column',
        'WB_UNKNOWN_COLUMN',
        (b) =>
          b
            .table(counters)
            .where(1)
            .update({ nope: 1 } as never),
      ],
      ['update of the primary key', 'WB_UNKNOWN_COLUMN', (b) => b.table(counters).where(1).update({ id: 2 })],
      [
        'update with a wrong type',
        'WB_INVALID_VALUE',
        (b) =>
          b
            .table(counters)
            .where(1)
            .update({ views: 'x' as never }),
      ],
      [
        'update with null in NOT NULL',
        'WB_INVALID_VALUE',
        (b) =>
          b
            .table(counters)
            .where(1)
            .update({ views: null as never }),
      ],
      [
        'insert missing a required column',
        'WB_MISSING_COLUMN',
        (b) => b.table(events).insert({ kind: 'x' } as never),
      ],
      ['insert of a non-object', 'WB_INVALID_VALUE', (b) => b.table(events).insert(null as never)],
      [
        'insert with a wrong type',
        'WB_INVALID_VALUE',
        (b) => b.table(events).insert({ kind: 1 as never, userId: 1 }),
      ],
      [
        'insert of an unknown column',
        'WB_UNKNOWN_COLUMN',
        (b) => b.table(events).insert({ kind: 'x', userId: 1, nope: 1 } as never),
      ],
      [
        'where without the full key',
        'WB_INVALID_KEY',
        (b) => b.table(stats).where({ postId: 1 }).increment('views'),
      ],
      [
        'scalar where on a composite key',
        'WB_INVALID_KEY',
        (b) => b.table(stats).where(1).increment('views'),
      ],
      [
        'where with a non-key column',
        'WB_INVALID_KEY',
        (b) => b.table(counters).where({ id: 1, views: 2 }).increment('views'),
      ],
      [
        'where with a wrong key type',
        'WB_INVALID_KEY',
        (b) => b.table(counters).where('1').increment('views'),
      ],
      ['where with NaN', 'WB_INVALID_KEY', (b) => b.table(counters).where(Number.NaN).increment('views')],
      [
        'where with no key',
        'WB_INVALID_KEY',
        (b) =>
          b
            .table(counters)
            .where(undefined as never)
            .increment('views'),
      ],
    ]
    // One buffer for every case (opening one per case cost more than the cases themselves).
    let shared: { buffer: WriteBuffer; ipc: Ipc } | undefined
    beforeAll(async () => {
      const ipc = await h.env.newIpc(uniqueId('wbbad'))
      const buffer = createWriteBuffer({
        ipc,
        databases: { default: h.env.db, second: h.env.second },
        handleSignals: false,
        flushInterval: 3_600_000,
        checkpointPath: false,
        logger: silentLogger,
      })
      shared = { buffer, ipc }
      await buffer.ready
    })
    afterAll(async () => {
      await shared?.buffer.close()
      await shared?.ipc.close()
    })

    test.each(cases)('%s', async (_name, code, call) => {
      const { buffer, ipc } = shared!
      let caught: unknown
      try {
        await call(buffer)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(WriteBufferError)
      expect((caught as WriteBufferError).code).toBe(code)
      expect(await ipc.keys(buffer.keys.pendingPrefix())).toEqual([])
    })
  })
}
