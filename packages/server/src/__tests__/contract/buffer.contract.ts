import { uniqueId } from '@tidesync/test-env'
import { openWriteBuffer, type WriteBuffer } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { rowsOf } from '../../db/types.js'
import { noopLogger } from '../../logger.js'
import type { Change, ChangeOutcome, RecordWithMeta } from '../../protocol.js'
import type { ModelConfig } from '../../types.js'
import { clientClock } from '../fixtures/clock.js'
import type { ContractEnv, TestCtx } from './env.js'
import { Replica } from './replica.js'

const ALICE = { userId: 'alice' }
const BOB = { userId: 'bob' }

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
    afterEach(async () => {
      for (const buffer of buffers.splice(0)) await buffer.close()
    })

    const setup = async (todos: Partial<ModelConfig<TestCtx>> = {}) => {
      const buffer = await openWriteBuffer({
        ipc: env().ipc,
        databases: { default: env().database.db },
        checkpointPath: false,
        handleSignals: false,
        flushInterval: 3_600_000,
        keyPrefix: `${uniqueId('wb')}:`,
        logger: noopLogger,
      })
      buffers.push(buffer)
      const t = env().create({ writeBuffer: buffer, keyPrefix: `${uniqueId('ts')}:`, todos })
      const push = (clientId: string, changes: Change[], ctx: TestCtx = {}) =>
        t.push({ clientId, changes }, ctx)
      return { t, buffer, push }
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
  })
}
