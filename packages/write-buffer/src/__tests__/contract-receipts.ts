import { describe, expect, test } from 'vitest'
import { WriteBufferError } from '../errors.js'
import type { Harness } from './harness.js'
import { counters } from './schema.js'

/**
 * Receipted increments: applied to the database at most once per receipt, however often they
 * are given (again while pending, again after a flush, again after a crash through `redeliver`,
 * or applied by the caller itself with `claimReceipts`).
 */
export function receiptContract(h: Harness): void {
  const views = async () =>
    (await h.env.query<{ views: number }>('select views from wb_counters where id = 1'))[0]?.views

  describe('receipts', () => {
    test('a receipt given twice while pending counts once, in get() and in the database', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id, views) values (1, 10)')
      const row = buffer.table(counters).where(1)
      await row.increment('views', 3, { receipt: 'change-a' })
      await row.increment('views', 3, { receipt: 'change-a' })
      await row.increment('views', 5, { receipt: 'change-b' })
      await row.increment('views', 1)
      expect(await row.get('views')).toBe(19)
      await buffer.flush()
      expect(await views()).toBe(19)
      expect(await row.get('views')).toBe(19)
    })

    test('a receipt given again after its flush is skipped by the next flush', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const row = buffer.table(counters).where(1)
      await row.increment('views', 4, { receipt: 'once' })
      await buffer.flush()
      await row.increment('views', 4, { receipt: 'once' })
      await row.increment('views', 2, { receipt: 'twice' })
      expect(await row.get('views')).toBe(6)
      await buffer.flush()
      expect(await views()).toBe(6)
      expect(
        await h.env.query(
          'select id from tidesync_write_buffer_receipts where table_id like $1 order by id',
          ['%wb_counters'],
        ),
      ).toEqual([{ id: 'once' }, { id: 'twice' }])
    })

    test('redeliver skips applied receipts, does not double pending ones, gives the rest', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 1, { receipt: 'flushed' })
      await buffer.flush()
      await t.where(1).increment('views', 10, { receipt: 'pending' })
      const report = await t.redeliver([
        { key: 1, column: 'views', delta: 1, receipt: 'flushed' },
        { key: 1, column: 'views', delta: 10, receipt: 'pending' },
        { key: 1, column: 'views', delta: 100, receipt: 'lost' },
      ])
      expect(report).toEqual({ delivered: ['pending', 'lost'], alreadyApplied: ['flushed'] })
      expect(await t.where(1).get('views')).toBe(111)
      await buffer.flush()
      expect(await views()).toBe(111)
    })

    test('claimReceipts: the caller applies an increment in its own transaction; the buffer then skips it', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      await t.where(1).increment('views', 7, { receipt: 'direct' })
      const claimed = await h.env.db.transaction(async (tx) => {
        const fresh = await t.claimReceipts(tx, ['direct', 'other'])
        if (fresh.has('direct')) await tx.execute('update wb_counters set views = views + 7 where id = 1')
        return fresh
      })
      expect([...claimed].sort()).toEqual(['direct', 'other'])
      // Still pending in the buffer, but applied: get() counts it once (from the table).
      expect(await t.where(1).get('views')).toBe(7)
      await buffer.flush()
      expect(await views()).toBe(7)
      // A rolled-back claim records nothing.
      await expect(
        h.env.db.transaction(async (tx) => {
          expect([...(await t.claimReceipts(tx, ['rolled-back']))]).toEqual(['rolled-back'])
          throw new Error('roll back')
        }),
      ).rejects.toThrow('roll back')
      await t.where(1).increment('views', 2, { receipt: 'rolled-back' })
      await buffer.flush()
      expect(await views()).toBe(9)
    })

    test('an update of the column replaces earlier receipted increments; their receipts stay used', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const row = buffer.table(counters).where(1)
      await row.increment('views', 5, { receipt: 'before-update' })
      await row.update({ views: 100 })
      await row.increment('views', 1, { receipt: 'after-update' })
      expect(await row.get('views')).toBe(101)
      await buffer.flush()
      expect(await views()).toBe(101)
    })

    test('a receipted increment of a row not inserted yet is kept, and applied once when it appears', async () => {
      const buffer = await h.open()
      const row = buffer.table(counters).where(1)
      await row.increment('views', 3, { receipt: 'early' })
      await buffer.flush()
      await h.env.exec('insert into wb_counters (id) values (1)')
      await row.increment('views', 3, { receipt: 'early' })
      await buffer.flush()
      expect(await views()).toBe(3)
    })

    test('journal mode: receipted increments are journaled, recovered after a crash and applied once', async (ctx) => {
      if (h.env.ipcDriver === 'redis') return ctx.skip()
      const dir = h.dir()
      const ipc1 = await h.ipc()
      const a = await h.open({ checkpointPath: dir, durability: 'journal' }, ipc1)
      await h.env.exec('insert into wb_counters (id) values (1)')
      const row = a.table(counters).where(1)
      await row.increment('views', 2, { receipt: 'j1' })
      await row.increment('views', 2, { receipt: 'j1' })
      await row.increment('views', 5, { receipt: 'j2' })
      expect(await row.get('views')).toBe(7)
      await ipc1.close() // crash: the store is gone, the journal is not
      const b = await h.open(
        { checkpointPath: dir, durability: 'journal', tables: [counters] },
        await h.ipc(),
      )
      await b.flush()
      expect(await views()).toBe(7)
      await b.table(counters).where(1).increment('views', 5, { receipt: 'j2' })
      await b.flush()
      expect(await views()).toBe(7)
    })

    test('bad receipts are refused with WB_INVALID_RECEIPT; redeliver checks every item before giving any', async () => {
      const buffer = await h.open()
      await h.env.exec('insert into wb_counters (id) values (1)')
      const t = buffer.table(counters)
      for (const receipt of ['', 'x'.repeat(201), 42 as unknown as string]) {
        const error = await t
          .where(1)
          .increment('views', 1, { receipt })
          .catch((e: unknown) => e)
        expect(error).toBeInstanceOf(WriteBufferError)
        expect(error).toMatchObject({ code: 'WB_INVALID_RECEIPT' })
      }
      await expect(
        t.redeliver([
          { key: 1, column: 'views', delta: 1, receipt: 'fine' },
          { key: 1, column: 'views', delta: 1.5, receipt: 'bad-delta' },
        ]),
      ).rejects.toMatchObject({ code: 'WB_INVALID_DELTA' })
      await expect(t.claimReceipts(h.env.db, [''])).rejects.toMatchObject({ code: 'WB_INVALID_RECEIPT' })
      expect(await t.where(1).get('views')).toBe(0)
      await buffer.flush()
      expect(await views()).toBe(0)
    })
  })
}
