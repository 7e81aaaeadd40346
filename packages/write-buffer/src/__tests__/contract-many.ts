import { eq, inArray } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { describe, expect, test } from 'vitest'
import { WriteBufferError } from '../errors.js'
import type { ReceiptedIncrement, TableBuffer } from '../tables/table-buffer.js'
import type { Harness } from './harness.js'
import { counters, stats } from './schema.js'

/** Every column of wb_counters but its key. */
const COLUMNS = ['views', 'likes', 'title', 'score', 'updatedAt', 'meta'] as const

/**
 * `TableBuffer.getMany` (`get()` of many rows and columns in one read window) and
 * `TableBuffer.incrementMany` (receipted increments of many rows in one step).
 */
export function manyContract(h: Harness): void {
  /** `get()` of every key and column, one call each: what `getMany` must give. */
  const getEach = async <T extends PgTable>(table: TableBuffer<T>, keys: unknown[], columns: string[]) => {
    const rows: Array<Map<string, unknown>> = []
    for (const key of keys) {
      const row = new Map<string, unknown>()
      for (const column of columns) row.set(column, await table.where(key as never).get(column as never))
      rows.push(row)
    }
    return rows
  }

  /** The code of the WriteBufferError `promise` rejects with (fails when it resolves or rejects otherwise). */
  const codeOf = async (promise: Promise<unknown>): Promise<string> => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(WriteBufferError)
    return (error as WriteBufferError).code
  }

  describe('getMany', () => {
    test('equals get() of every key and column: pending update, increments, queued insert, database value, missing row', async () => {
      // No cache: get() and getMany must each read what they give, not share a cached base.
      const buffer = await h.open({ getCacheTtl: 0 })
      await h.env.exec(`insert into wb_counters (id, views, likes, title, score, meta) values
        (1, 10, 3, 'db', 1.5, null), (2, 20, 0, 'two', 0, '{"a":1}'), (6, 50, 0, null, 0, null)`)
      const t = buffer.table(counters)
      const stamp = new Date('2026-05-06T07:08:09.000Z')
      await t.where(1).update({ title: 'upd', updatedAt: stamp })
      await t.where(1).increment('views', 5)
      await t.where(1).increment('score', 2)
      await t.incrementMany([{ key: 1, column: 'likes', delta: 2, receipt: 'r-likes' }])
      await t.insert({ id: 3, views: 7, title: 'queued' })
      await t.where(3).increment('views', 4)
      await t.where(4).increment('views', 9) // no such row: its increments wait for it
      await t.where(5).update({ title: 'orphan' }) // no such row, but an update of the column
      await t.where(6).increment('views', 5)
      await t.where(6).update({ views: 100 })
      await t.where(6).increment('views', 1)

      const keys = [1, 2, 3, 4, 5, 6, 1]
      const many = await t.getMany(keys, [...COLUMNS])
      expect(many).toHaveLength(keys.length)
      expect(many[0]).toEqual(
        new Map<string, unknown>([
          ['views', 15],
          ['likes', 5],
          ['title', 'upd'],
          ['score', '3.50'],
          ['updatedAt', stamp],
          ['meta', null],
        ]),
      )
      expect(Object.fromEntries(many[1]!)).toMatchObject({
        views: 20,
        likes: 0,
        title: 'two',
        meta: { a: 1 },
      })
      expect(Object.fromEntries(many[2]!)).toMatchObject({ views: 11, likes: 0, title: 'queued' })
      expect(many[3]).toEqual(new Map(COLUMNS.map((column) => [column, null])))
      expect(Object.fromEntries(many[4]!)).toEqual({
        views: null,
        likes: null,
        title: 'orphan',
        score: null,
        updatedAt: null,
        meta: null,
      })
      expect(many[5]!.get('views')).toBe(101)
      expect(many[6]).toEqual(many[0])
      expect(many).toEqual(await getEach(t, keys, [...COLUMNS]))

      await t.flush()
      const after = await t.getMany(keys, [...COLUMNS])
      expect(after).toEqual(await getEach(t, keys, [...COLUMNS]))
      const table = await h.env.query<{ id: number; views: number; likes: string; title: string | null }>(
        'select id, views, likes::text, title from wb_counters order by id',
      )
      expect(table).toEqual([
        { id: 1, views: 15, likes: '5', title: 'upd' },
        { id: 2, views: 20, likes: '0', title: 'two' },
        { id: 3, views: 11, likes: '0', title: 'queued' },
        { id: 6, views: 101, likes: '0', title: null },
      ])
      keys.forEach((id, i) => {
        expect(after[i]!.get('views')).toBe(table.find((row) => row.id === id)?.views ?? null)
      })
    })

    test('onlyPending: only the columns with an update or increments pending, valued as get()', async () => {
      const buffer = await h.open()
      await h.env.exec(
        `insert into wb_counters (id, views, title) values (1, 10, 'db'), (2, 20, 'two'), (7, 70, null)`,
      )
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      await t.where(1).update({ title: 'new' })
      await t.insert({ id: 3, views: 7 })
      await t.where(3).increment('views', 4)
      await t.where(4).increment('views', 9)
      await t.where(5).update({ title: 'orphan' })
      await t.where(7).increment('views', 3)
      await t.where(7).increment('views', -3) // sums to nothing
      const keys = [1, 2, 3, 4, 5, 7]
      const pending = await t.getMany(keys, [...COLUMNS], { onlyPending: true })
      expect(pending.map((row) => Object.fromEntries(row))).toEqual([
        { views: 12, title: 'new' },
        {},
        { views: 11 },
        {},
        { title: 'orphan' },
        {},
      ])
      const all = await getEach(t, keys, [...COLUMNS])
      pending.forEach((row, i) => {
        for (const [column, value] of row) expect(value).toEqual(all[i]!.get(column))
      })
      // Nothing pending: the database is not read.
      const before = h.env.queries.count
      expect(await t.getMany([2, 7], ['views', 'title'], { onlyPending: true })).toEqual([
        new Map(),
        new Map(),
      ])
      expect(h.env.queries.count).toBe(before)
      await t.flush()
      expect(await t.getMany([1, 3], ['views', 'title'], { onlyPending: true })).toEqual([
        new Map(),
        new Map(),
      ])
    })

    test('empty keys or columns give empty maps; an unknown column or a bad key rejects with a typed error', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id, views) values (1, 10)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 1)
      expect(await t.getMany([], ['views'])).toEqual([])
      expect(await t.getMany([1, 2], [])).toEqual([new Map(), new Map()])
      expect(await t.getMany([], [], { onlyPending: true })).toEqual([])
      expect(await codeOf(t.getMany([1], ['views', 'nope' as never]))).toBe('WB_UNKNOWN_COLUMN')
      expect(await codeOf(t.getMany([], ['nope' as never]))).toBe('WB_UNKNOWN_COLUMN')
      expect(await codeOf(t.getMany([1, '1' as never], ['views']))).toBe('WB_INVALID_KEY')
      expect(await codeOf(buffer.table(stats).getMany([1 as never], ['views']))).toBe('WB_INVALID_KEY')
      expect(await t.getMany([1], ['views'])).toEqual([new Map([['views', 11]])])
    })

    test('composite keys, and batches left in flight by a failed flush: equals get()', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({ getCacheTtl: 0 }, ipc)
      await h.env.exec(`insert into wb_stats (post_id, day, views) values (1, 'a', 1), (1, 'b', 2)`)
      await h.env.exec('insert into wb_counters (id, views) values (1, 100), (2, 200)')
      const s = buffer.table(stats)
      await s.where({ postId: 1, day: 'a' }).increment('views', 10)
      await s.incrementMany([{ key: { day: 'b', postId: 1 }, column: 'views', delta: 20, receipt: 's-b' }])
      const statKeys = [
        { postId: 1, day: 'a' },
        { postId: 1, day: 'b' },
        { postId: 2, day: 'a' },
      ]
      const statRows = await s.getMany(statKeys, ['views'])
      expect(statRows.map((row) => row.get('views'))).toEqual([11, 22, null])
      expect(statRows).toEqual(await getEach(s, statKeys, ['views']))

      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await t.incrementMany([{ key: 2, column: 'views', delta: 7, receipt: 'in-flight' }])
      await t.where(2).update({ title: 'first' })
      await buffer.checkpoint().catch(() => null) // seals into a batch when checkpoints are on
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      await expect(t.flush()).rejects.toMatchObject({ code: 'WB_FLUSH_FAILED' })
      await h.env.exec('alter table wb_counters_away rename to wb_counters')
      expect(await ipc.keys(buffer.keys.inflightPrefix(t.id))).not.toEqual([])
      // Pending on top of what is in flight.
      await t.where(1).increment('views', 1)
      await t.incrementMany([
        { key: 2, column: 'views', delta: 7, receipt: 'in-flight' }, // the same receipt: once
        { key: 1, column: 'views', delta: 3, receipt: 'pending' },
      ])
      await t.where(2).update({ title: 'second' })
      const keys = [1, 2]
      const many = await t.getMany(keys, ['views', 'title'])
      expect(many.map((row) => Object.fromEntries(row))).toEqual([
        { views: 109, title: null },
        { views: 207, title: 'second' },
      ])
      expect(many).toEqual(await getEach(t, keys, ['views', 'title']))
      const pending = await t.getMany(keys, ['views', 'title'], { onlyPending: true })
      expect(pending.map((row) => Object.fromEntries(row))).toEqual([
        { views: 109 },
        { views: 207, title: 'second' },
      ])
      await buffer.flush()
      expect(await h.env.query('select id, views, title from wb_counters order by id')).toEqual([
        { id: 1, views: 109, title: null },
        { id: 2, views: 207, title: 'second' },
      ])
      expect(await t.getMany(keys, ['views', 'title'])).toEqual(await getEach(t, keys, ['views', 'title']))
    })

    test('{ db, rows }: inside a transaction holding the row locks, reads go to it and the rows as read are the bases', async () => {
      const buffer = await h.open({ getCacheTtl: 0 })
      await h.env.exec(`insert into wb_counters (id, views, title) values (1, 10, 'db'), (2, 20, null)`)
      const t = buffer.table(counters)
      await t.where(1).increment('views', 5)
      await t.incrementMany([{ key: 2, column: 'views', delta: 2, receipt: 'tx-2' }])
      await t.where(2).update({ title: 'pending' })
      const keys = [1, 2, 3]
      const seen = await h.env.db.transaction(async (tx) => {
        // A write of the transaction itself: only reads through it see it. (On PGlite, one
        // session: a read outside the transaction would wait for it, for ever.)
        await tx.update(counters).set({ views: 40 }).where(eq(counters.id, 1))
        const locked = await tx.select().from(counters).where(inArray(counters.id, keys)).for('update')
        const rows = keys.map((id) => locked.find((row) => row.id === id) ?? null)
        expect(rows[2]).toBeNull()
        return {
          withRows: await t.getMany(keys, ['views', 'title'], { db: tx, rows }),
          pendingWithRows: await t.getMany(keys, ['views', 'title'], { db: tx, rows, onlyPending: true }),
          throughTx: await t.getMany(keys, ['views', 'title'], { db: tx }),
        }
      })
      const expected = [
        { views: 45, title: 'db' },
        { views: 22, title: 'pending' },
        { views: null, title: null },
      ]
      expect(seen.withRows.map((row) => Object.fromEntries(row))).toEqual(expected)
      expect(seen.throughTx.map((row) => Object.fromEntries(row))).toEqual(expected)
      expect(seen.pendingWithRows.map((row) => Object.fromEntries(row))).toEqual([
        { views: 45 },
        { views: 22, title: 'pending' },
        {},
      ])
      // Committed: get() (outside) agrees.
      expect(seen.withRows).toEqual(await getEach(t, keys, ['views', 'title']))
    })

    test('reads through a rolled-back transaction are not cached: get() afterwards gives the committed value', async () => {
      // A long cache: a value cached from inside the transaction would outlive its rollback.
      const buffer = await h.open({ getCacheTtl: 60_000 })
      await h.env.exec(`insert into wb_counters (id, views, title) values (1, 10, 'db')`)
      const t = buffer.table(counters)
      const rollback = new Error('roll back')
      const inside = await h.env.db
        .transaction(async (tx) => {
          await tx.update(counters).set({ views: 99, title: 'uncommitted' }).where(eq(counters.id, 1))
          const [row] = await t.getMany([1], ['views', 'title'], { db: tx })
          expect(Object.fromEntries(row!)).toEqual({ views: 99, title: 'uncommitted' })
          throw rollback
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(inside).toBe(rollback)
      expect(await t.where(1).get('views')).toBe(10)
      expect(await t.where(1).get('title')).toBe('db')
      const [row] = await t.getMany([1], ['views', 'title'])
      expect(Object.fromEntries(row!)).toEqual({ views: 10, title: 'db' })
    })

    test('a failed database read rejects with WB_READ_FAILED', async () => {
      const buffer = await h.open()
      const t = buffer.table(counters)
      await t.where(1).increment('views', 2)
      await h.env.exec('alter table wb_counters rename to wb_counters_away')
      try {
        const error = await t.getMany([1, 2], ['views']).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(WriteBufferError)
        expect(error).toMatchObject({ code: 'WB_READ_FAILED', table: t.id })
      } finally {
        await h.env.exec('alter table wb_counters_away rename to wb_counters')
      }
    })
  })

  describe('incrementMany', () => {
    const views = async () =>
      h.env.query<{ id: number; views: number; likes: string }>(
        'select id, views, likes::text from wb_counters order by id',
      )

    test('sums into get() and getMany, and after a flush into the table; zero deltas are skipped', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id, views) values (1, 10), (2, 0)')
      const t = buffer.table(counters)
      await t.incrementMany([])
      await t.incrementMany([
        { key: 1, column: 'views', delta: 3, receipt: 'a' },
        { key: 2, column: 'views', delta: 4, receipt: 'b' },
        { key: 1, column: 'likes', delta: 5n, receipt: 'c' },
        { key: 2, column: 'likes', delta: 0, receipt: 'zero' },
        { key: 1, column: 'views', delta: -1, receipt: 'd' },
      ])
      await t.incrementMany([{ key: 2, column: 'views', delta: 0, receipt: 'only-zero' }])
      expect(await t.where(1).get('views')).toBe(12)
      expect(await t.where(1).get('likes')).toBe(5)
      expect(await t.where(2).get('views')).toBe(4)
      expect(await t.where(2).get('likes')).toBe(0)
      const pending = await t.getMany([1, 2], ['views', 'likes'], { onlyPending: true })
      expect(pending.map((row) => Object.fromEntries(row))).toEqual([{ views: 12, likes: 5 }, { views: 4 }])
      await buffer.flush()
      expect(await views()).toEqual([
        { id: 1, views: 12, likes: '5' },
        { id: 2, views: 4, likes: '0' },
      ])
      expect(await t.getMany([1, 2], ['views', 'likes'], { onlyPending: true })).toEqual([
        new Map(),
        new Map(),
      ])
    })

    test('the same receipt twice counts once: in one call, across calls, with where().increment, after its flush', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id, views) values (1, 10)')
      const t = buffer.table(counters)
      await t.incrementMany([
        { key: 1, column: 'views', delta: 3, receipt: 'r1' },
        { key: 1, column: 'views', delta: 3, receipt: 'r1' },
      ])
      await t.incrementMany([
        { key: 1, column: 'views', delta: 3, receipt: 'r1' },
        { key: 1, column: 'views', delta: 5, receipt: 'r2' },
      ])
      await t.where(1).increment('views', 5, { receipt: 'r2' })
      await t.where(1).increment('views', 2, { receipt: 'r3' })
      await t.incrementMany([{ key: 1, column: 'views', delta: 2, receipt: 'r3' }])
      expect(await t.where(1).get('views')).toBe(20)
      expect(await t.getMany([1], ['views'])).toEqual([new Map([['views', 20]])])
      await buffer.flush()
      expect(await views()).toEqual([{ id: 1, views: 20, likes: '0' }])
      // Given again after the flush that applied them: skipped.
      await t.incrementMany([
        { key: 1, column: 'views', delta: 3, receipt: 'r1' },
        { key: 1, column: 'views', delta: 5, receipt: 'r2' },
        { key: 1, column: 'views', delta: 1, receipt: 'r4' },
      ])
      expect(await t.where(1).get('views')).toBe(21)
      await buffer.flush()
      expect(await views()).toEqual([{ id: 1, views: 21, likes: '0' }])
    })

    test('an invalid item among valid ones rejects with a typed error and none of them is applied', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id, views) values (1, 10), (2, 20)')
      const t = buffer.table(counters)
      const valid: ReceiptedIncrement<typeof counters>[] = [
        { key: 1, column: 'views', delta: 1, receipt: 'ok-1' },
        { key: 2, column: 'views', delta: 2, receipt: 'ok-2' },
      ]
      const last: ReceiptedIncrement<typeof counters> = { key: 1, column: 'likes', delta: 3, receipt: 'ok-3' }
      const bad: Array<[string, Record<string, unknown>]> = [
        ['WB_UNKNOWN_COLUMN', { key: 2, column: 'nope', delta: 1, receipt: 'bad-column' }],
        ['WB_UNKNOWN_COLUMN', { key: 2, column: 'id', delta: 1, receipt: 'key-column' }],
        ['WB_NOT_NUMERIC', { key: 2, column: 'title', delta: 1, receipt: 'text-column' }],
        ['WB_INVALID_DELTA', { key: 2, column: 'views', delta: 1.5, receipt: 'fraction' }],
        ['WB_INVALID_DELTA', { key: 2, column: 'views', delta: Number.NaN, receipt: 'nan' }],
        ['WB_INVALID_DELTA', { key: 2, column: 'views', delta: '1', receipt: 'string' }],
        ['WB_INVALID_RECEIPT', { key: 2, column: 'views', delta: 1, receipt: '' }],
        ['WB_INVALID_RECEIPT', { key: 2, column: 'views', delta: 1, receipt: 'x'.repeat(201) }],
        ['WB_INVALID_RECEIPT', { key: 2, column: 'views', delta: 1 }],
        ['WB_INVALID_RECEIPT', { key: 2, column: 'views', delta: 0, receipt: '' }],
        ['WB_INVALID_KEY', { key: '2', column: 'views', delta: 1, receipt: 'bad-key' }],
      ]
      for (const [code, item] of bad) {
        const items = [...valid, item as unknown as ReceiptedIncrement<typeof counters>, last]
        expect(await codeOf(t.incrementMany(items)), JSON.stringify(item).slice(0, 80)).toBe(code)
      }
      expect(await t.getMany([1, 2], ['views', 'likes'], { onlyPending: true })).toEqual([
        new Map(),
        new Map(),
      ])
      expect(await t.where(1).get('views')).toBe(10)
      await buffer.flush()
      expect(await views()).toEqual([
        { id: 1, views: 10, likes: '0' },
        { id: 2, views: 20, likes: '0' },
      ])
      // Their receipts were not used: given now, they count.
      await t.incrementMany([...valid, last])
      await buffer.flush()
      expect(await views()).toEqual([
        { id: 1, views: 11, likes: '3' },
        { id: 2, views: 22, likes: '0' },
      ])
    })

    test('journal mode: journaled in one step, recovered after a crash and applied once', async (ctx) => {
      if (h.env.ipcDriver === 'redis') return ctx.skip() // no journal on Redis
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir, durability: 'journal' }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1), (2)')
      const t = a.table(counters)
      await t.incrementMany([
        { key: 1, column: 'views', delta: 2, receipt: 'j1' },
        { key: 1, column: 'views', delta: 2, receipt: 'j1' },
        { key: 2, column: 'views', delta: 5, receipt: 'j2' },
      ])
      await t.incrementMany([{ key: 2, column: 'views', delta: 5, receipt: 'j2' }])
      expect((await t.getMany([1, 2], ['views'])).map((row) => row.get('views'))).toEqual([2, 5])
      await ipc1.close() // crash: the store is gone, the journal is not
      const b = await h.open(
        { checkpointPath: dir, durability: 'journal', tables: [counters] },
        await h.ipc(),
      )
      await b.flush()
      expect(await views()).toEqual([
        { id: 1, views: 2, likes: '0' },
        { id: 2, views: 5, likes: '0' },
      ])
      await b.table(counters).incrementMany([{ key: 2, column: 'views', delta: 5, receipt: 'j2' }])
      await b.flush()
      expect((await views())[1]?.views).toBe(5)
    })
  })
}
