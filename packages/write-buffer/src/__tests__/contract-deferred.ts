import { randomUUID } from 'node:crypto'
import type { PgTable } from 'drizzle-orm/pg-core'
import { describe, expect, test } from 'vitest'
import type { DeferredOptions } from '../tables/deferred.js'
import { handoffSchemaObjects } from '../tables/handoff-table.js'
import type { TableBuffer } from '../tables/table-buffer.js'
import type { WriteBuffer } from '../write-buffer.js'
import type { Harness } from './harness.js'
import { silentLogger } from './harness.js'
import { tokens } from './schema.js'

const HANDOFFS = 'wb_handoffs'

/**
 * Deferred writes (`buffer.deferred`). The invariant: a counter delta of a committed
 * transaction is applied exactly once, and no reader that waits on the row's mark (`settled`)
 * sees that commit without the delta. Stage inside the transaction, deliver after the commit,
 * abandon after a rollback, recover what a dead process left.
 */
export function deferredContract(h: Harness): void {
  /** The buffer's table face replaced, as a dead or refusing process would present it. */
  const withTables = (real: WriteBuffer, face: (inner: TableBuffer<PgTable>) => object): WriteBuffer =>
    Object.assign(Object.create(real) as WriteBuffer, { table: (table: PgTable) => face(real.table(table)) })

  const setup = async (buffer?: WriteBuffer, options: Partial<DeferredOptions> = {}) => {
    for (const object of handoffSchemaObjects(HANDOFFS)) await h.env.exec(object.statement)
    await h.env.exec(`delete from ${HANDOFFS}`)
    const real = buffer ?? (await h.open())
    const id = randomUUID()
    await h.env.exec(`insert into wb_tokens (id, owner, hits) values ('${id}', 1, 10)`)
    const deferredOf = (target: WriteBuffer, more: Partial<DeferredOptions> = {}) =>
      target.deferred({
        table: HANDOFFS,
        marksKey: (group) => `${h.prefix}:marks:${group}`,
        resolve: (group) => (group === 'tokens' ? tokens : undefined),
        logger: silentLogger,
        ...options,
        ...more,
      })
    const deferred = deferredOf(real)
    const hits = async () =>
      (await h.env.query<{ hits: number }>('select hits from wb_tokens where id = $1', [id]))[0]!.hits
    const rows = async () => h.env.query<{ receipt: string }>(`select receipt from ${HANDOFFS}`)
    const commit = (target = deferred, delta = 5) =>
      h.env.db.transaction((tx) => target.stage(tx, [{ group: 'tokens', key: id, deltas: { hits: delta } }]))
    return { real, id, deferred, deferredOf, hits, rows, commit }
  }

  describe('deferred writes', () => {
    test('stage then deliver: the delta reaches the buffer once, the hand-off row goes, the mark settles', async () => {
      const { real, id, deferred, hits, rows, commit } = await setup()
      const staged = await commit()
      expect(await rows()).toHaveLength(1)
      expect(String(Object.values(await deferred.marks.all('tokens'))[0])).toMatch(/^hand-off:/)
      await deferred.deliver(staged)
      expect(await rows()).toEqual([])
      expect(String((await deferred.marks.all('tokens'))[id])).not.toMatch(/^hand-off:/)
      expect(await real.table(tokens).where(id).get('hits')).toBe(15)
      await real.flush()
      expect(await hits()).toBe(15)
      // Nothing is left to recover.
      expect(await deferred.recover({ minAgeMs: 0 })).toBe(0)
      await real.flush()
      expect(await hits()).toBe(15)
    })

    test('a rolled back transaction leaves no row, and abandon settles its marks', async () => {
      const { real, id, deferred, rows } = await setup()
      let staged: Awaited<ReturnType<typeof deferred.stage>> | undefined
      await expect(
        h.env.db.transaction(async (tx) => {
          staged = await deferred.stage(tx, [{ group: 'tokens', key: id, deltas: { hits: 5 } }])
          throw new Error('rolled back')
        }),
      ).rejects.toThrow('rolled back')
      await deferred.abandon(staged!)
      expect(await rows()).toEqual([])
      expect(await deferred.settled('tokens', [id])).toHaveProperty(id)
      expect(await real.table(tokens).where(id).get('hits')).toBe(10)
    })

    test('a reader waiting on the mark never sees the commit without its delta', async () => {
      const real = await h.open()
      let open: () => void = () => {}
      const gate = new Promise<void>((resolve) => (open = resolve))
      const gated = withTables(real, (inner) => ({
        where: (key: string) => ({
          increment: async (column: string, n: number, options: { receipt: string }) => {
            await gate
            return inner.where(key as never).increment(column as never, n, options)
          },
        }),
        incrementMany: async (items: never[]) => {
          await gate
          return inner.incrementMany(items)
        },
      }))
      const { id, deferredOf, commit } = await setup(real)
      const deferred = deferredOf(gated)
      const staged = await commit(deferred)
      const delivering = deferred.deliver(staged)
      let settled = false
      const reading = deferred.settled('tokens', [id]).then(() => {
        settled = true
      })
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(settled).toBe(false)
      open()
      await delivering
      await reading
      expect(await real.table(tokens).where(id).get('hits')).toBe(15)
    })

    test('a crash between commit and deliver leaves the row: the next reader redelivers it, once', async () => {
      const { real, id, deferredOf, hits, rows, commit } = await setup(undefined, { timeoutMs: 100 })
      // The process that committed dies before `deliver`.
      await commit(deferredOf(real))
      expect(await rows()).toHaveLength(1)
      const other = deferredOf(real)
      // A reader waits for the mark; once it expires, the owed delta is handed over.
      await other.settled('tokens', [id])
      expect(await rows()).toEqual([])
      expect(await real.table(tokens).where(id).get('hits')).toBe(15)
      expect(await other.recover({ minAgeMs: 0 })).toBe(0)
      await real.flush()
      expect(await hits()).toBe(15)
    })

    test('recover at start-up redelivers rows of any age, and a row given again counts nothing', async () => {
      const { real, id, deferredOf, hits, rows, commit } = await setup()
      await commit(deferredOf(real))
      const [left] = await rows()
      const restarted = deferredOf(real)
      expect(await restarted.recover()).toBe(0) // younger than timeoutMs: maybe under way
      expect(await restarted.recover({ minAgeMs: 0 })).toBe(1)
      expect(await rows()).toEqual([])
      await real.flush()
      expect(await hits()).toBe(15)
      // The same row again (a second process swept it too): its receipt is applied already.
      await h.env.exec(
        `insert into ${HANDOFFS} (receipt, model, uid, deltas) values ('${left!.receipt}', 'tokens', '${id}', '{"hits":5}')`,
      )
      expect(await restarted.recover({ minAgeMs: 0 })).toBe(1)
      await real.flush()
      expect(await hits()).toBe(15)
    })

    test('a refused hand-off is written to the table directly, claiming its receipts', async () => {
      const real = await h.open()
      const refusing = withTables(real, (inner) => ({
        where: () => ({
          increment: async () => {
            throw new Error('injected: the IPC store is unreachable')
          },
        }),
        incrementMany: async () => {
          throw new Error('injected: the IPC store is unreachable')
        },
        claimReceipts: (tx: unknown, receipts: string[]) => inner.claimReceipts(tx, receipts),
        redeliver: (items: never[]) => inner.redeliver(items),
      }))
      const { id, deferredOf, hits, rows, commit } = await setup(real)
      const deferred = deferredOf(refusing)
      const staged = await commit(deferred)
      const [row] = await rows()
      await deferred.deliver(staged)
      expect(await rows()).toEqual([])
      expect(await hits()).toBe(15)
      // The claimed receipt makes the buffer skip the delta if it reached it after all.
      await real
        .table(tokens)
        .where(id)
        .increment('hits', 5, { receipt: `${row!.receipt}/hits` })
      await real.flush()
      expect(await hits()).toBe(15)
    })
  })
}
