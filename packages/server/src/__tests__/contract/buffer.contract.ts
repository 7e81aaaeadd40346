import { createIpc, type Ipc, IpcUnavailableError } from '@tidesync/ipc'
import { redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { openWriteBuffer, type TableBuffer, type WriteBuffer } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { v7 as uuidv7 } from 'uuid'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { rowsOf } from '../../db/types.js'
import { channelFor } from '../../live/messages.js'
import { noopLogger } from '../../logger.js'
import type { Change, ChangeOutcome, RecordWithMeta } from '../../protocol.js'
import type { Logger, ModelConfig } from '../../types.js'
import { clientClock } from '../fixtures/clock.js'
import { todos } from '../fixtures/schema.js'
import type { ContractEnv, TestCtx } from './env.js'
import { Replica } from './replica.js'

type Server = ReturnType<ContractEnv['create']>

/** Redis, for a test that needs IPC round trips to take real time. */
const hasRedis = await requireServer('redis')

const ALICE = { userId: 'alice' }
const BOB = { userId: 'bob' }

/**
 * The real buffer with the faces of its tables replaced (what the server's deferred writes go
 * through), to play a process that died or stalls at the hand-off.
 */
function withTables(real: WriteBuffer, face: (inner: TableBuffer<PgTable>) => object): WriteBuffer {
  return Object.assign(Object.create(real) as WriteBuffer, {
    table: (table: PgTable) => face(real.table(table)),
  })
}

function statusOf(outcome: ChangeOutcome | undefined): string | undefined {
  return outcome?.status === 'rejected' ? outcome.error.code : outcome?.status
}

/**
 * Counters and `buffered` models through a real `@tidesync/write-buffer` (flush interval of an
 * hour, so nothing reaches the table until the test flushes): every read overlays what is
 * pending, a retried push still applies once, and scope is judged on the pending state.
 */
export function bufferContract(env: () => ContractEnv): void {
  describe('write buffer', () => {
    const buffers: WriteBuffer[] = []
    const ipcs: Ipc[] = []
    afterEach(async () => {
      for (const buffer of buffers.splice(0)) await buffer.close()
      for (const ipc of ipcs.splice(0)) await ipc.close()
    })

    /** A write buffer on the suite's database (flushed only by the test), closed after the test. */
    const openBuffer = async (ipc: Ipc = env().ipc) => {
      const buffer = await openWriteBuffer({
        ipc,
        databases: { default: env().database.db },
        checkpointPath: false,
        handleSignals: false,
        flushInterval: 3_600_000,
        keyPrefix: `${uniqueId('wb')}:`,
        logger: noopLogger,
      })
      buffers.push(buffer)
      return buffer
    }

    /** A server and its write buffer, on the suite's memory IPC or on `ipc`. */
    const setup = async (
      todos: Partial<ModelConfig<TestCtx>> = {},
      { ipc = env().ipc, logger = noopLogger }: { ipc?: Ipc; logger?: Logger } = {},
    ) => {
      const buffer = await openBuffer(ipc)
      const t = env().create({ ipc, logger, writeBuffer: buffer, keyPrefix: `${uniqueId('ts')}:`, todos })
      const push = (clientId: string, changes: Change[], ctx: TestCtx = {}) =>
        t.push({ clientId, changes }, ctx)
      return { t, buffer, push }
    }

    /** The hand-off rows (counter deltas owed to the buffer). */
    const handOffRows = async () =>
      rowsOf<{ receipt: string; uid: string; deltas: Record<string, number> }>(
        await env().database.db.execute(
          sql`SELECT receipt, uid, deltas FROM tidesync_handoffs ORDER BY receipt`,
        ),
      )

    /** A hand-off row as a server would have written it, `ageSeconds` ago. */
    const insertHandOff = async (
      row: { receipt: string; model: string; uid: string; deltas: Record<string, number> },
      ageSeconds: number,
    ) => {
      await env().database.db.execute(
        sql`INSERT INTO tidesync_handoffs (receipt, model, uid, deltas, created_at)
          VALUES (${row.receipt}, ${row.model}, ${row.uid}, ${JSON.stringify(row.deltas)}::jsonb,
            now() - make_interval(secs => ${ageSeconds}))`,
      )
    }

    const until = async (check: () => Promise<boolean>, ms = 10_000) => {
      const deadline = Date.now() + ms
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error('condition not met in time')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }

    /** The row as the table holds it (nothing pending). */
    const stored = async (uid: string) =>
      rowsOf<{ title: string; likes: number; owner_id: string }>(
        await env().database.db.execute(sql`SELECT title, likes, owner_id FROM todos WHERE uid = ${uid}`),
      )[0]

    it('counter increments go through the buffer, every read overlays them, a retry applies once', async () => {
      const { t, buffer, push } = await setup()
      const { record } = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'liked' } },
        {},
      )) as RecordWithMeta
      const uid = record.uid
      const replica = new Replica(t, undefined)
      await replica.full()
      const like = (id: string, n: number): Change => ({
        id,
        model: 'todos',
        uid,
        op: 'increment',
        deltas: { likes: n },
        clock: t.core.hlc.now(),
      })
      const first = await push('phone', [like('p1', 5)])
      expect(statusOf(first.outcomes[0])).toBe('applied')
      await push('laptop', [like('l1', 3)])
      // A lost acknowledgement: the phone sends the same change again.
      const retry = await push('phone', [like('p1', 5)])
      expect(retry.outcomes).toEqual([{ id: 'p1', status: 'duplicate' }])

      expect((await stored(uid))!.likes).toBe(0)
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record.likes).toBe(8)
      expect((await t.services.todos!.findMany({}, {}))[0]!.record.likes).toBe(8)
      await replica.pullAll()
      expect(replica.records.get(uid)!.record.likes).toBe(8)
      const fresh = new Replica(t, undefined)
      await fresh.pullAll()
      expect(fresh.records.get(uid)!.record.likes).toBe(8)
      expect((await t.fullSync({ model: 'todos', metadata: {} }, {})).addClient[0]!.record.likes).toBe(8)

      await buffer.flush()
      expect((await stored(uid))!.likes).toBe(8)
      // Flushed: the table and the overlay are not added up twice.
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record.likes).toBe(8)
      expect((await push('phone', [like('p1', 5)])).outcomes[0]!.status).toBe('duplicate')
      await buffer.flush()
      expect((await stored(uid))!.likes).toBe(8)
    })

    it('an update of a model with counters answers and publishes the record with its pending deltas', async () => {
      const { t, push } = await setup()
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
      const published: unknown[] = []
      const unsubscribe = await env().ipc.subscribe(channelFor(t.core.keyPrefix, 'todos'), (message) => {
        published.push(message)
      })
      const clock = () => t.core.hlc.now()
      const inc = await push(
        'phone',
        [{ id: 'i1', model: 'todos', uid, op: 'increment', deltas: { likes: 3 }, clock: clock() }],
        ALICE,
      )
      expect(statusOf(inc.outcomes[0])).toBe('applied')
      const upd = await push(
        'phone',
        [{ id: 'u1', model: 'todos', uid, op: 'update', patch: { title: 'renamed' }, clock: clock() }],
        ALICE,
      )
      const outcome = upd.outcomes[0] as { status: string; record?: { likes?: number; title?: string } }
      expect(outcome.status).toBe('applied')
      expect(outcome.record).toMatchObject({ title: 'renamed', likes: 3 })
      const viaService = (await t.services.todos!.update(
        { uid, patch: { title: 'again' } },
        ALICE,
      )) as RecordWithMeta
      expect(viaService.record).toMatchObject({ title: 'again', likes: 3 })
      expect((await stored(uid))!.likes).toBe(0)
      // Every live push of the record carries the counter with its pending delta.
      await vi.waitFor(() => expect(JSON.stringify(published)).toContain('"again"'))
      const likes = [...JSON.stringify(published).matchAll(/"likes":(\d+)/g)].map((m) => Number(m[1]))
      await unsubscribe()
      expect(likes.slice(1)).toEqual(likes.slice(1).map(() => 3))
    })

    for (const ran of [false, true]) {
      const what = ran
        ? 'whose IPC request timed out after it ran in the store is written to the table and counted once'
        : 'the buffer refuses (its IPC unreachable) is written to the table, not lost'
      it(`a committed increment ${what}`, async () => {
        const warnings: string[] = []
        const logger = { ...noopLogger, warn: (message: string) => warnings.push(message) }
        const fault = { failNext: false }
        let refusing: () => void = () => {}
        const refused = new Promise<void>((resolve) => (refusing = resolve))
        const ipc = env().ipc
        // The buffer's increment with a receipt is an `hset` of its pending receipts hash.
        const isIncrement = (property: string | symbol, args: unknown[]) =>
          property === 'hincrBy' || (property === 'hset' && String(args[0]).endsWith(':rct'))
        const flaky = new Proxy(ipc, {
          get(target, property, receiver) {
            const value = Reflect.get(target, property, receiver)
            if (typeof value !== 'function') return value
            if (property !== 'hincrBy' && property !== 'hset') return value.bind(target)
            return async (...args: unknown[]) => {
              if (fault.failNext && isIncrement(property, args)) {
                fault.failNext = false
                refusing()
                if (ran) await value.apply(target, args)
                // As a command timeout does: the refusal takes a while.
                await new Promise((resolve) => setTimeout(resolve, 100))
                throw new IpcUnavailableError('injected: the IPC store is unreachable', ran)
              }
              return value.apply(target, args)
            }
          },
        })
        const buffer = await openBuffer(flaky)
        const t = env().create({ ipc, logger, writeBuffer: buffer, keyPrefix: `${uniqueId('ts')}:` })
        const uid = uuidv7()
        await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
        const like: Change = {
          id: 'c2',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 5 },
          clock: t.core.hlc.now(),
        }
        const start = await t.fullSync({ model: 'todos', metadata: {} }, ALICE)
        fault.failNext = true
        const pushing = t.push({ clientId: 'phone', changes: [like] }, ALICE)
        await refused // committed; the hand-off is being refused
        // A pull meanwhile waits for the record's hand-off, which ends with the table write.
        const pulled = await t.pull({ model: 'todos', checkpoint: start.checkpoint }, ALICE)
        const first = await pushing
        expect(fault.failNext).toBe(false)
        const outcome = first.outcomes[0] as {
          status: string
          meta?: { rev: number }
          record?: { likes?: number }
        }
        expect(outcome.status).toBe('applied')
        expect(outcome.record?.likes).toBe(5)
        expect(pulled.upserts.map((u) => [u.meta.rev, u.record.likes])).toEqual([[outcome.meta?.rev, 5]])
        expect(warnings).toEqual([expect.stringContaining('written to the table instead')])
        expect((await stored(uid))!.likes).toBe(5)
        expect(await handOffRows()).toEqual([])
        expect((await t.push({ clientId: 'phone', changes: [like] }, ALICE)).outcomes).toEqual([
          { id: 'c2', status: 'duplicate' },
        ])
        expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.likes).toBe(5)
        // The next increment goes through the buffer again; nothing is counted twice.
        const more = await t.push(
          {
            clientId: 'phone',
            changes: [{ ...like, id: 'c3', deltas: { likes: 2 }, clock: t.core.hlc.now() }],
          },
          ALICE,
        )
        expect(statusOf(more.outcomes[0])).toBe('applied')
        expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.likes).toBe(7)
        await buffer.flush()
        expect((await stored(uid))!.likes).toBe(7)
      })
    }

    it('a server that dies between the commit and the hand-off loses nothing: the next reader hands the delta over, once', async () => {
      const real = await openBuffer()
      // The dying server's buffer: its increments never arrive (the process is gone).
      const dead = withTables(real, (inner) => ({
        where: (key: string) => ({
          increment: () => new Promise<never>(() => {}),
          update: () => new Promise<never>(() => {}),
          get: (column: string) => inner.where(key as never).get(column as never),
        }),
        getMany: (keys: never[], columns: never[], options?: { onlyPending?: boolean }) =>
          inner.getMany(keys, columns, options),
        incrementMany: () => new Promise<never>(() => {}),
        insert: () => new Promise<never>(() => {}),
        redeliver: () => new Promise<never>(() => {}),
        claimReceipts: () => new Promise<never>(() => {}),
      }))
      const keyPrefix = `${uniqueId('ts')}:`
      const dying = env().create({ writeBuffer: dead, keyPrefix })
      const other = env().create({ writeBuffer: real, keyPrefix })
      const uid = uuidv7()
      await other.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
      const like: Change = {
        id: 'k1',
        model: 'todos',
        uid,
        op: 'increment',
        deltas: { likes: 3 },
        clock: other.core.hlc.now(),
      }
      void dying.push({ clientId: 'phone', changes: [like] }, ALICE) // never answered
      await until(async () => (await handOffRows()).length === 1)
      // The client retries on the other server: the change is committed, so it is a duplicate.
      expect((await other.push({ clientId: 'phone', changes: [like] }, ALICE)).outcomes).toEqual([
        { id: 'k1', status: 'duplicate' },
      ])
      // A reader waits for the record's mark; when it expires, the owed delta is handed over.
      const found = await other.services.todos!.findUnique({ uid }, ALICE)
      expect(found!.record.likes).toBe(3)
      expect(await handOffRows()).toEqual([])
      expect(await other.recoverHandOffs()).toBe(0)
      await real.flush()
      expect((await stored(uid))!.likes).toBe(3)
    }, 20_000)

    it('hand-off rows left behind are swept once; a row whose delta the buffer already took is not counted twice', async () => {
      const { t, buffer, push } = await setup()
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
      const increment = (id: string, likes: number): Change => ({
        id,
        model: 'todos',
        uid,
        op: 'increment',
        deltas: { likes },
        clock: t.core.hlc.now(),
      })
      expect(statusOf((await push('phone', [increment('s1', 2)], ALICE)).outcomes[0])).toBe('applied')
      expect(await handOffRows()).toEqual([])
      // As if a server died after the buffer took a delta but before deleting its row...
      const owed = { receipt: 'left-behind', model: 'todos', uid, deltas: { likes: 2 } }
      await buffer.table(todos).where(uid).increment('likes', 2, { receipt: 'left-behind/likes' })
      await insertHandOff(owed, 10)
      // ...and another row whose hand-off never happened.
      await insertHandOff({ receipt: 'never-handed', model: 'todos', uid, deltas: { likes: 10 } }, 10)
      // A fresh row (its server may still be handing it over) is left alone.
      await insertHandOff({ receipt: 'fresh', model: 'todos', uid, deltas: { likes: 100 } }, 0)
      expect(await t.recoverHandOffs()).toBe(2)
      expect((await handOffRows()).map((r) => r.receipt)).toEqual(['fresh'])
      // 2 (pushed) + 2 (left behind: counted once) + 10 (never handed over).
      expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.likes).toBe(14)
      // At start-up (installTidesync), rows of any age are handed over.
      expect(await t.recoverHandOffs({ minAgeMs: 0 })).toBe(1)
      expect(await handOffRows()).toEqual([])
      expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.likes).toBe(114)
      await buffer.flush()
      expect((await stored(uid))!.likes).toBe(114)
      // Swept again after the flush (a second server, a repeated sweep): nothing counts twice.
      await insertHandOff(owed, 10)
      expect(await t.recoverHandOffs()).toBe(1)
      await buffer.flush()
      expect((await stored(uid))!.likes).toBe(114)
    })

    it('a record unmarked or written between the snapshot and its lock is read again under the lock, without a retry', async () => {
      const real = await openBuffer()
      let between: (() => Promise<void>) | null = null
      // The real buffer; right after the batch's snapshot of the record's pending state (read
      // before its transaction), `between` runs.
      const racing = withTables(real, (inner) =>
        Object.assign(Object.create(inner) as object, {
          getMany: async (keys: never[], columns: never[], options?: { db?: unknown }) => {
            const cells = await inner.getMany(keys, columns, options)
            if (between && !options?.db) {
              const run = between
              between = null
              await run()
            }
            return cells
          },
        }),
      )
      const keyPrefix = `${uniqueId('ts')}:`
      const queries: string[] = []
      const db = env().database.withQueryLog((query) => queries.push(query))
      const t = env().create({ db, writeBuffer: racing, keyPrefix })
      const marks = `${keyPrefix}pending:todos`
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
      const increment = (id: string, likes: number): Change => ({
        id,
        model: 'todos',
        uid,
        op: 'increment',
        deltas: { likes },
        clock: t.core.hlc.now(),
      })
      const likesOf = (outcome: ChangeOutcome | undefined) =>
        outcome?.status === 'applied' ? outcome.record?.likes : outcome
      // +2 pending in the buffer; the record is marked.
      expect(
        likesOf((await t.push({ clientId: 'phone', changes: [increment('i1', 2)] }, ALICE)).outcomes[0]),
      ).toBe(2)
      // A reader unmarks it meanwhile (as one that found nothing to overlay does): the +2 is
      // still pending, and the batch reads it under the lock.
      between = async () => {
        await env().ipc.hdel(marks, uid)
      }
      expect(
        likesOf((await t.push({ clientId: 'phone', changes: [increment('i2', 3)] }, ALICE)).outcomes[0]),
      ).toBe(5)
      // Another server's increment is delivered meanwhile, with its new mark.
      between = async () => {
        await real.table(todos).where(uid).increment('likes', 10, { receipt: 'another-server/likes' })
        await env().ipc.hset(marks, { [uid]: 'settled-by-another-server' })
      }
      const edit: Change = {
        id: 'e1',
        model: 'todos',
        uid,
        op: 'update',
        patch: { title: 'x' },
        clock: t.core.hlc.now(),
      }
      const edited = (await t.push({ clientId: 'phone', changes: [edit] }, ALICE)).outcomes[0]
      expect(edited).toMatchObject({ status: 'applied', record: { title: 'x', likes: 15 } })
      expect(queries.filter((q) => /^rollback/i.test(q.trim()))).toEqual([])
      await real.flush()
      expect((await stored(uid))!.likes).toBe(15)
      expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.likes).toBe(15)
    })

    it('a pull during the hand-over of an increment waits for it: it never sees the new revision with the old counter', async () => {
      const real = await openBuffer()
      let gate: Promise<void> | null = null
      let open: () => void = () => {}
      let reachedGate: () => void = () => {}
      const atGate = new Promise<void>((resolve) => (reachedGate = resolve))
      // The real buffer, with the hand-over of an increment held at a gate.
      const gated = withTables(real, (inner) => ({
        where: (key: string) => {
          const row = inner.where(key as never)
          return {
            increment: async (column: string, n?: number, options?: { receipt?: string }) => {
              if (gate) {
                reachedGate()
                await gate
              }
              return row.increment(column as never, n, options)
            },
            update: (fields: Record<string, unknown>) => row.update(fields as never),
            get: (column: string) => row.get(column as never),
          }
        },
        getMany: (keys: never[], columns: never[], options?: { onlyPending?: boolean }) =>
          inner.getMany(keys, columns, options),
        incrementMany: async (items: never[]) => {
          if (gate) {
            reachedGate()
            await gate
          }
          return inner.incrementMany(items)
        },
        insert: (row: Record<string, unknown>) => inner.insert(row as never),
        flush: () => inner.flush(),
        redeliver: (items: never[]) => inner.redeliver(items),
        claimReceipts: (tx: unknown, receipts: string[]) => inner.claimReceipts(tx, receipts),
      }))
      const t = env().create({ writeBuffer: gated, keyPrefix: `${uniqueId('ts')}:` })
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
      const start = await t.fullSync({ model: 'todos', metadata: {} }, ALICE)
      gate = new Promise<void>((resolve) => (open = resolve))
      const incrementing = t.push(
        {
          clientId: 'phone',
          changes: [
            { id: 'i1', model: 'todos', uid, op: 'increment', deltas: { likes: 1 }, clock: t.core.hlc.now() },
          ],
        },
        ALICE,
      )
      await atGate // committed; the delta waits to be handed over
      let answered = false
      const racing = t.pull({ model: 'todos', checkpoint: start.checkpoint }, ALICE).finally(() => {
        answered = true
      })
      await new Promise((resolve) => setTimeout(resolve, 150))
      expect(answered).toBe(false)
      open()
      const applied = (await incrementing).outcomes[0] as {
        status: string
        meta?: { rev: number }
        record?: { likes?: number }
      }
      expect(applied.status).toBe('applied')
      expect(applied.record?.likes).toBe(1)
      const page = await racing
      const seen = page.upserts.find((u) => u.record.uid === uid)!
      expect(seen.meta.rev).toBe(applied.meta?.rev)
      expect(seen.record.likes).toBe(1)
      expect((await t.pull({ model: 'todos', checkpoint: page.checkpoint }, ALICE)).upserts).toEqual([])
    })

    it('a buffered model writes updates through the buffer; reads, where and LWW see them at once', async () => {
      const { t, buffer, push } = await setup({ buffered: true })
      const uid = uuidv7()
      const t0 = Date.now() - 10_000
      await push('a', [
        {
          id: 'c',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'u1', title: 'draft' },
          clock: clientClock(t0, 'a'),
        },
      ])
      const replica = new Replica(t, undefined)
      await replica.full()
      await push('a', [
        {
          id: 'u1',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'final' },
          clock: clientClock(t0 + 2000, 'a'),
        },
      ])
      // An older edit of the same field from another client loses, also against a pending value.
      const older = await push('b', [
        {
          id: 'u2',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'stale', done: true },
          clock: clientClock(t0 + 1000, 'b'),
        },
      ])
      expect(statusOf(older.outcomes[0])).toBe('applied')

      expect((await stored(uid))!.title).toBe('draft')
      const expected = { uid, title: 'final', done: true }
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record).toMatchObject(expected)
      expect(
        (await t.services.todos!.findMany({ where: { title: 'final' } }, {})).map((r) => r.record.uid),
      ).toEqual([uid])
      expect(await t.services.todos!.findMany({ where: { title: 'draft' } }, {})).toEqual([])
      await replica.pullAll()
      expect(replica.records.get(uid)!.record).toMatchObject(expected)
      const full = await t.fullSync({ model: 'todos', where: { title: 'final' }, metadata: {} }, {})
      expect(full.addClient.map((r) => r.record.uid)).toEqual([uid])

      await buffer.flush()
      expect((await stored(uid))!.title).toBe('final')
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record).toMatchObject(expected)
    })

    it('a pending change of a scope column moves the record out of scope at once', async () => {
      const { t, buffer, push } = await setup({ buffered: true })
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'handed over' } }, ALICE)
      const alice = new Replica(t, undefined, ALICE)
      await alice.full()
      expect(alice.records.has(uid)).toBe(true)
      // An admin (no scope) hands the record to Bob; the change waits in the buffer.
      await t.services.todos!.update({ uid, patch: { ownerId: 'bob' } }, {})
      expect((await stored(uid))!.owner_id).toBe('alice')

      const check = async () => {
        expect(await t.services.todos!.findUnique({ uid }, ALICE)).toBeNull()
        expect(await t.services.todos!.findMany({}, ALICE)).toEqual([])
        expect((await t.services.todos!.findMany({}, BOB)).map((r) => r.record.uid)).toEqual([uid])
        const write = await push(
          'alice-phone',
          [
            {
              id: uuidv7(),
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'mine again?' },
              clock: t.core.hlc.now(),
            },
          ],
          ALICE,
        )
        expect(statusOf(write.outcomes[0])).toBe('FORBIDDEN')
        const initial = await t.pull({ model: 'todos', checkpoint: '0' }, ALICE)
        expect(initial.upserts).toEqual([])
        const full = await t.fullSync({ model: 'todos', metadata: alice.metadata() }, ALICE)
        expect(full.evictClient).toEqual([uid])
        expect(JSON.stringify(full)).not.toContain('handed over')
      }
      await check()
      const page = await t.pull({ model: 'todos', checkpoint: alice.checkpoint! }, ALICE)
      expect(page.upserts).toEqual([])
      expect(page.evictions).toEqual([uid])
      const bobsWrite = await push(
        'bob-phone',
        [
          {
            id: uuidv7(),
            model: 'todos',
            uid,
            op: 'update',
            patch: { done: true },
            clock: t.core.hlc.now(),
          },
        ],
        BOB,
      )
      expect(statusOf(bobsWrite.outcomes[0])).toBe('applied')
      await buffer.flush()
      expect((await stored(uid))!.owner_id).toBe('bob')
      await check()
    })

    it('a push that changes the same records many times applies each change once (records repeat across transactions)', async () => {
      const { t, buffer, push } = await setup({ buffered: true })
      const uids = [uuidv7(), uuidv7(), uuidv7()]
      const changes: Change[] = []
      for (const [k, uid] of uids.entries()) {
        const clock = (n: number) => clientClock(Date.UTC(2026, 0, 1) + k * 100 + n, 'a')
        changes.push({
          id: `${k}-c`,
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'u1', title: `t${k}` },
          clock: clock(0),
        })
        for (let n = 1; n <= 4; n++)
          changes.push({
            id: `${k}-i${n}`,
            model: 'todos',
            uid,
            op: 'increment',
            deltas: { likes: n },
            clock: clock(n),
          })
        changes.push({
          id: `${k}-u`,
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: `edited ${k}` },
          clock: clock(9),
        })
      }
      const first = await push('phone', changes)
      expect(first.outcomes.map(statusOf)).toEqual(changes.map(() => 'applied'))
      const retry = await push('phone', changes)
      expect(retry.outcomes.map(statusOf)).toEqual(changes.map(() => 'duplicate'))
      const overlaid = await t.services.todos!.findMany({}, {})
      expect(overlaid.map((r) => [r.record.title, r.record.likes]).sort()).toEqual([
        ['edited 0', 10],
        ['edited 1', 10],
        ['edited 2', 10],
      ])
      await buffer.flush()
      for (const uid of uids)
        expect(await stored(uid)).toMatchObject({ likes: 10, title: expect.stringMatching(/^edited/) })
    })
    describe('refused and rolled-back writes never reach the buffer', () => {
      /** Alice may write her own records, never to a title starting "nope" nor past 100 likes. */
      const guarded: Partial<ModelConfig<TestCtx>> = {
        canWrite: (_ctx, record, { op }) =>
          op === 'delete'
            ? record.title !== 'keep me'
            : !String(record.title).startsWith('nope') && Number(record.likes) <= 100,
      }
      const configs: Array<[string, Partial<ModelConfig<TestCtx>>]> = [
        ['a buffered model', { ...guarded, buffered: true }],
        ['a model with counters only', guarded],
      ]

      /** Seeds records straight through the services (no write buffer work left behind). */
      const seed = async (t: Server) => {
        const mine = uuidv7()
        const bobs = uuidv7()
        const keep = uuidv7()
        await t.services.todos!.create(
          { uid: mine, data: { ownerId: 'alice', title: 'mine', likes: 1 } },
          ALICE,
        )
        await t.services.todos!.create({ uid: bobs, data: { ownerId: 'bob', title: 'bobs', likes: 2 } }, BOB)
        await t.services.todos!.create({ uid: keep, data: { ownerId: 'alice', title: 'keep me' } }, ALICE)
        return { mine, bobs, keep }
      }

      /**
       * Nothing is pending in the buffer for these rows (its own reads say the table's values,
       * and a flush writes no row), the table is as it was, and no reader sees anything else.
       */
      const expectUntouched = async (
        t: Server,
        buffer: WriteBuffer,
        rows: Record<string, { owner_id: string; title: string; likes: number }>,
      ) => {
        for (const [uid, row] of Object.entries(rows)) {
          expect(await stored(uid)).toEqual(row)
          const handle = buffer.table(todos).where(uid)
          expect({
            owner_id: await handle.get('ownerId'),
            title: await handle.get('title'),
            likes: await handle.get('likes'),
          }).toEqual(row)
        }
        const reports = await buffer.flush()
        expect(reports.reduce((n, r) => n + r.updatedRows + r.inserted + r.orphaned, 0)).toBe(0)
        for (const [uid, row] of Object.entries(rows)) {
          expect(await stored(uid)).toEqual(row)
          const owner = { userId: row.owner_id }
          for (const ctx of [{}, owner]) {
            const found = await t.services.todos!.findUnique({ uid }, ctx)
            expect(found!.record).toMatchObject({ ownerId: row.owner_id, title: row.title, likes: row.likes })
          }
          const fresh = new Replica(t, undefined, owner)
          await fresh.pullAll()
          expect(fresh.records.get(uid)!.record).toMatchObject({ title: row.title, likes: row.likes })
          const full = await t.fullSync({ model: 'todos', metadata: {} }, owner)
          expect(full.addClient.find((r) => r.record.uid === uid)!.record).toMatchObject({
            title: row.title,
            likes: row.likes,
          })
        }
      }

      for (const [name, config] of configs) {
        it(`${name}: pushes refused by scope or canWrite leave nothing in the buffer`, async () => {
          const { t, buffer, push } = await setup(config)
          const { mine, bobs, keep } = await seed(t)
          const bobReplica = new Replica(t, undefined, BOB)
          await bobReplica.full()
          const change = (id: string, uid: string, body: Partial<Change>): Change =>
            ({ id, model: 'todos', uid, clock: t.core.hlc.now(), ...body }) as Change
          const refused = [
            // outside Alice's scope
            change('1', bobs, { op: 'update', patch: { title: 'pwned' } }),
            change('2', bobs, { op: 'increment', deltas: { likes: 50 } }),
            change('3', bobs, { op: 'create', data: { ownerId: 'bob', title: 'pwned' } }),
            // would leave her scope (moves the record to Bob)
            change('4', mine, { op: 'update', patch: { ownerId: 'bob', title: 'planted' } }),
            change('5', mine, { op: 'create', data: { ownerId: 'bob', title: 'planted' } }),
            // refused by canWrite
            change('6', mine, { op: 'update', patch: { title: 'nope, not this' } }),
            change('7', mine, { op: 'increment', deltas: { likes: 500 } }),
            change('8', keep, { op: 'delete' }),
          ]
          // One change per push (each its own transaction), then all of them in one batch.
          for (const c of refused) {
            expect(statusOf((await push('alice-phone', [c], ALICE)).outcomes[0])).toBe('FORBIDDEN')
          }
          const batch = await push(
            'alice-laptop',
            refused.map((c) => ({ ...c, id: `b${c.id}`, clock: t.core.hlc.now() })),
            ALICE,
          )
          expect(batch.outcomes.map(statusOf)).toEqual(refused.map(() => 'FORBIDDEN'))

          await bobReplica.pullAll()
          expect(bobReplica.records.has(mine)).toBe(false)
          expect(bobReplica.records.get(bobs)!.record).toMatchObject({ title: 'bobs', likes: 2 })
          await expectUntouched(t, buffer, {
            [mine]: { owner_id: 'alice', title: 'mine', likes: 1 },
            [bobs]: { owner_id: 'bob', title: 'bobs', likes: 2 },
            [keep]: { owner_id: 'alice', title: 'keep me', likes: 0 },
          })
          expect((await t.services.todos!.findMany({}, BOB)).map((r) => r.record.uid)).toEqual([bobs])
        })

        it(`${name}: service writes refused by scope or canWrite leave nothing in the buffer`, async () => {
          const { t, buffer } = await setup(config)
          const { mine, bobs, keep } = await seed(t)
          const todosService = t.services.todos!
          const attempts: Array<() => Promise<unknown>> = [
            () => todosService.update({ uid: bobs, patch: { title: 'pwned' } }, ALICE),
            () => todosService.create({ uid: bobs, data: { ownerId: 'alice', title: 'stolen' } }, ALICE),
            () => todosService.delete({ uid: bobs }, ALICE),
            () => todosService.update({ uid: mine, patch: { ownerId: 'bob', title: 'planted' } }, ALICE),
            () => todosService.create({ uid: mine, data: { ownerId: 'bob', title: 'planted' } }, ALICE),
            () => todosService.update({ uid: mine, patch: { title: 'nope' } }, ALICE),
            () => todosService.create({ uid: mine, data: { ownerId: 'alice', title: 'nope' } }, ALICE),
            () => todosService.delete({ uid: keep }, ALICE),
          ]
          for (const attempt of attempts) await expect(attempt()).rejects.toMatchObject({ code: 'FORBIDDEN' })
          await expectUntouched(t, buffer, {
            [mine]: { owner_id: 'alice', title: 'mine', likes: 1 },
            [bobs]: { owner_id: 'bob', title: 'bobs', likes: 2 },
            [keep]: { owner_id: 'alice', title: 'keep me', likes: 0 },
          })
        })
      }

      it('a batch with refused changes hands only the accepted ones to the buffer', async () => {
        const { t, buffer, push } = await setup({ ...guarded, buffered: true })
        const uids = Array.from({ length: 6 }, () => uuidv7())
        for (const [k, uid] of uids.entries()) {
          await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: `t${k}` } }, ALICE)
        }
        const change = (id: string, uid: string, body: Partial<Change>): Change =>
          ({ id, model: 'todos', uid, clock: t.core.hlc.now(), ...body }) as Change
        const result = await push(
          'alice-phone',
          [
            change('ok-1', uids[0]!, { op: 'update', patch: { title: 'accepted 0' } }),
            change('no-1', uids[1]!, { op: 'update', patch: { title: 'accepted?', ownerId: 'bob' } }),
            change('ok-2', uids[2]!, { op: 'increment', deltas: { likes: 7 } }),
            change('no-2', uids[3]!, { op: 'update', patch: { title: 'nope 3' } }),
            change('no-3', uids[4]!, { op: 'increment', deltas: { likes: 1000 } }),
            change('ok-3', uids[5]!, { op: 'update', patch: { title: 'accepted 5', done: true } }),
          ],
          ALICE,
        )
        expect(result.outcomes.map(statusOf)).toEqual([
          'applied',
          'FORBIDDEN',
          'applied',
          'FORBIDDEN',
          'FORBIDDEN',
          'applied',
        ])
        // The refused records: nothing pending; the accepted ones: pending, then flushed.
        for (const uid of [uids[1]!, uids[3]!, uids[4]!]) {
          const handle = buffer.table(todos).where(uid)
          expect([await handle.get('ownerId'), await handle.get('title'), await handle.get('likes')]).toEqual(
            ['alice', `t${uids.indexOf(uid)}`, 0],
          )
        }
        expect((await t.services.todos!.findMany({}, BOB)).map((r) => r.record.uid)).toEqual([])
        await buffer.flush()
        const rows = await Promise.all(uids.map((uid) => stored(uid)))
        expect(rows).toEqual([
          { owner_id: 'alice', title: 'accepted 0', likes: 0 },
          { owner_id: 'alice', title: 't1', likes: 0 },
          { owner_id: 'alice', title: 't2', likes: 7 },
          { owner_id: 'alice', title: 't3', likes: 0 },
          { owner_id: 'alice', title: 't4', likes: 0 },
          { owner_id: 'alice', title: 'accepted 5', likes: 0 },
        ])
      })

      for (const driver of ['memory', 'redis'] as const) {
        it.runIf(driver === 'memory' || hasRedis)(
          `concurrent writers of one record (${driver} IPC): the newest clock wins in the buffer, counters add up, a pulling client converges`,
          async () => {
            const ipc =
              driver === 'memory'
                ? env().ipc
                : await createIpc({ driver, url: redisUrl, keyPrefix: `${uniqueId('ipc')}:` })
            if (driver === 'redis') ipcs.push(ipc)
            const { t, buffer, push } = await setup({ buffered: true }, { ipc })
            const uid = uuidv7()
            await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
            const replica = new Replica(t, undefined, ALICE)
            await replica.pullAll()
            const base = Date.now() + 1_000
            // Clocks in an order unrelated to the order the pushes are sent in.
            const order = Array.from({ length: 16 }, (_, k) => (k * 7) % 16)
            /** As a client does: a push answered UNAVAILABLE (contention on the record) is sent again. */
            const pushUntilDone = async (clientId: string, changes: Change[]) => {
              for (let attempt = 1; ; attempt++) {
                try {
                  return await push(clientId, changes, ALICE)
                } catch (error) {
                  if ((error as { code?: string }).code !== 'UNAVAILABLE' || attempt >= 100) throw error
                }
              }
            }
            let writing = true
            const pulling = (async () => {
              while (writing) {
                await replica.pullAll()
                // As a client's pulls are: one at a time, yielding to the event loop (with
                // PGlite, back-to-back queries could otherwise starve every timer).
                await new Promise((resolve) => setTimeout(resolve, 1))
              }
            })()
            let results: Array<Awaited<ReturnType<typeof push>>>
            try {
              results = await Promise.all(
                order.map((k) =>
                  pushUntilDone(`client-${k}`, [
                    {
                      id: `u${k}`,
                      model: 'todos',
                      uid,
                      op: 'update',
                      patch: { title: `title ${k}` },
                      clock: clientClock(base + k * 10, `c${k}`),
                    },
                    {
                      id: `i${k}`,
                      model: 'todos',
                      uid,
                      op: 'increment',
                      deltas: { likes: k + 1 },
                      clock: clientClock(base + k * 10 + 1, `c${k}`),
                    },
                  ]),
                ),
              )
            } finally {
              writing = false
              await pulling
            }
            // A resent push answers `duplicate` for what an earlier attempt committed.
            for (const result of results)
              for (const outcome of result.outcomes)
                expect(['applied', 'duplicate']).toContain(outcome.status)
            const expected = { title: 'title 15', likes: 136 }
            expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record).toMatchObject(expected)
            await replica.pullAll()
            expect(replica.records.get(uid)!.record).toMatchObject(expected)
            await buffer.flush()
            expect(await stored(uid)).toMatchObject(expected)
          },
        )
      }

      it('a hand-off left in flight (its server stopped after the commit) holds readers and writers of the record until it expires', async () => {
        const warnings: string[] = []
        const logger = { ...noopLogger, warn: (message: string) => warnings.push(message) }
        const { t, buffer, push } = await setup({ buffered: true }, { logger })
        const uid = uuidv7()
        await t.services.todos!.create({ uid, data: { ownerId: 'alice', title: 'start' } }, ALICE)
        // What a server leaves when it stops between a commit and its hand-off: the record's
        // mark in flight (it would have been settled after the hand-off).
        const strand = async (ms: number) => {
          const expires = Date.now() + ms
          await env().ipc.hset(`${t.core.keyPrefix}pending:todos`, { [uid]: `hand-off:${expires}:dead-1` })
          return expires
        }
        let expires = await strand(300)
        expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.title).toBe('start')
        expect(Date.now()).toBeGreaterThanOrEqual(expires)
        expect(warnings).toEqual([expect.stringContaining(`todos ${uid} still in flight`)])

        expires = await strand(300)
        const result = await push(
          'alice-phone',
          [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'after' },
              clock: t.core.hlc.now(),
            },
          ],
          ALICE,
        )
        expect(Date.now()).toBeGreaterThanOrEqual(expires)
        expect(statusOf(result.outcomes[0])).toBe('applied')
        expect(warnings).toHaveLength(2)
        expect((await t.services.todos!.findUnique({ uid }, ALICE))!.record.title).toBe('after')
        await buffer.flush()
        expect((await stored(uid))!.title).toBe('after')
        expect(warnings).toHaveLength(2)
      })

      for (const when of ['at the change log insert', 'at COMMIT'] as const) {
        it(`a transaction that fails ${when} after staging buffer writes hands nothing to the buffer`, async () => {
          const { t, buffer, push } = await setup({ buffered: true })
          const db = env().database.db
          const poisoned = uuidv7()
          const other = uuidv7()
          await t.services.todos!.create(
            { uid: poisoned, data: { ownerId: 'alice', title: 'poison' } },
            ALICE,
          )
          await t.services.todos!.create({ uid: other, data: { ownerId: 'alice', title: 'other' } }, ALICE)
          // Every change-log entry of the poisoned record fails (a serialization failure: UNAVAILABLE).
          await db.execute(
            sql.raw(`CREATE OR REPLACE FUNCTION tidesync_test_poison() RETURNS trigger AS $$
              BEGIN
                IF EXISTS (SELECT 1 FROM todos WHERE uid::text = NEW.uid AND title = 'poison') THEN
                  RAISE EXCEPTION 'poisoned' USING ERRCODE = '40001';
                END IF;
                RETURN NULL;
              END $$ LANGUAGE plpgsql`),
          )
          await db.execute(
            sql.raw(`CREATE CONSTRAINT TRIGGER tidesync_test_poison AFTER INSERT ON tidesync_changes
              ${when === 'at COMMIT' ? 'DEFERRABLE INITIALLY DEFERRED' : 'NOT DEFERRABLE'}
              FOR EACH ROW EXECUTE FUNCTION tidesync_test_poison()`),
          )
          try {
            const clock = () => t.core.hlc.now()
            // Pushes: the other record's change is staged first, then the poisoned one fails.
            for (const op of ['update', 'increment'] as const) {
              const body = op === 'update' ? { patch: { title: 'lost' } } : { deltas: { likes: 3 } }
              await expect(
                push(
                  'alice-phone',
                  [
                    { id: `${op}-1`, model: 'todos', uid: other, op, ...body, clock: clock() },
                    { id: `${op}-2`, model: 'todos', uid: poisoned, op, ...body, clock: clock() },
                  ] as Change[],
                  ALICE,
                ),
              ).rejects.toMatchObject({ code: 'UNAVAILABLE' })
            }
            // The services: one change each.
            await expect(
              t.services.todos!.update({ uid: poisoned, patch: { title: 'cured' } }, ALICE),
            ).rejects.toMatchObject({ code: 'UNAVAILABLE' })
          } finally {
            await db.execute(sql.raw('DROP TRIGGER tidesync_test_poison ON tidesync_changes'))
            await db.execute(sql.raw('DROP FUNCTION tidesync_test_poison()'))
          }
          await expectUntouched(t, buffer, {
            [poisoned]: { owner_id: 'alice', title: 'poison', likes: 0 },
            [other]: { owner_id: 'alice', title: 'other', likes: 0 },
          })
          // Nothing was recorded either: the push applies in full when sent again.
          const retry = await push(
            'alice-phone',
            [
              {
                id: 'update-1',
                model: 'todos',
                uid: other,
                op: 'update',
                patch: { title: 'kept' },
                clock: t.core.hlc.now(),
              },
            ],
            ALICE,
          )
          expect(statusOf(retry.outcomes[0])).toBe('applied')
          await buffer.flush()
          expect((await stored(other))!.title).toBe('kept')
        })
      }
    })
  })
}
