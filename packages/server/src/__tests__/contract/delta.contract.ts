import { sql } from 'drizzle-orm'
import fc from 'fast-check'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Core } from '../../core.js'
import { changesAfter, currentRevision } from '../../db/revisions-read.js'
import type { RecordWithMeta, Where } from '../../protocol.js'
import { clientClock } from '../fixtures/clock.js'
import type { ContractEnv } from './env.js'
import { Replica, serverState } from './replica.js'

export function deltaContract(env: () => ContractEnv): void {
  describe('sync:pull', () => {
    it('the checkpoint is a server revision: a change with an old client clock still arrives', async () => {
      const t = env().create()
      const replica = new Replica(t, undefined)
      await replica.full()
      const uid = uuidv7()
      await t.push(
        {
          clientId: 'offline-for-years',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'create',
              data: { ownerId: 'u1', title: 'old' },
              clock: clientClock(Date.UTC(2001, 0, 1), 'old'),
            },
          ],
        },
        {},
      )
      const page = await replica.pullPage()
      expect(page.upserts.map((u) => u.record.uid)).toEqual([uid])
      expect(page.checkpoint).not.toBe('r:0')
      const again = await replica.pullPage()
      expect(again).toMatchObject({ upserts: [], deletes: [], evictions: [], hasMore: false, remaining: 0 })
    })

    it('pages through changes with hasMore, remaining and advancing checkpoints', async () => {
      const t = env().create()
      const replica = new Replica(t, undefined)
      await replica.full()
      for (let i = 0; i < 25; i++)
        await t.services.todos!.create({ data: { ownerId: 'u1', title: `t${i}` } }, {})
      const first = await replica.pullPage(10)
      expect(first).toMatchObject({ hasMore: true, remaining: 25 })
      expect(first.upserts).toHaveLength(10)
      const second = await replica.pullPage(10)
      expect(second).toMatchObject({ hasMore: true, remaining: 15 })
      const third = await replica.pullPage(10)
      expect(third).toMatchObject({ hasMore: false, remaining: 5 })
      expect(replica.records.size).toBe(25)
    })

    it('counts the changes that remain exactly up to a bound, and past it estimates them', async () => {
      // A catch-up asks after every page: counting everything that follows on each would cost
      // as much as what follows (changesAfter reads at most the bound).
      const t = env().create()
      const core = t.core as Core
      const start = await currentRevision(core, 'todos')
      for (let i = 0; i < 12; i++) {
        await t.services.todos!.create({ data: { ownerId: 'u1', title: `remaining ${i}` } }, {})
        // A revision another model takes: the model's entries are spread among all revisions.
        await env().database.db.execute(sql`SELECT nextval('tidesync_rev_seq')`)
      }
      expect(await changesAfter(core, 'todos', start)).toBe(12)
      expect(await changesAfter(core, 'todos', start, 12)).toBe(12)
      const estimated = await changesAfter(core, 'todos', start, 4)
      expect(estimated).toBeGreaterThanOrEqual(9)
      expect(estimated).toBeLessThanOrEqual(15)
      expect(await changesAfter(core, 'todos', await currentRevision(core, 'todos'), 4)).toBe(0)
    })

    it('sends tombstones and evictions only for records the caller could have held', async () => {
      const t = env().create()
      const s = t.services.todos!
      const mine = (await s.create(
        { data: { ownerId: 'u1', title: 'mine', priority: 1 } },
        {},
      )) as RecordWithMeta
      const leaving = (await s.create(
        { data: { ownerId: 'u1', title: 'leaving', priority: 1 } },
        {},
      )) as RecordWithMeta
      const other = (await s.create(
        { data: { ownerId: 'u1', title: 'other where', priority: 9 } },
        {},
      )) as RecordWithMeta
      const replica = new Replica(t, { priority: { lte: 5 } })
      await replica.full()
      expect(replica.records.size).toBe(2)
      await s.update({ uid: leaving.record.uid, patch: { priority: 8 } }, {})
      await s.delete({ uid: mine.record.uid }, {})
      await s.update({ uid: other.record.uid, patch: { title: 'still elsewhere' } }, {})
      await s.delete({ uid: other.record.uid }, {})
      const page = await replica.pullPage()
      expect(page.upserts).toEqual([])
      expect(page.deletes.map((d) => d.uid)).toEqual([mine.record.uid])
      expect(page.evictions).toEqual([leaving.record.uid])
      expect(replica.records.size).toBe(0)
    })

    it('loads from checkpoint "0" in pages, then follows the change log', async () => {
      const t = env().create()
      for (let i = 0; i < 12; i++)
        await t.services.todos!.create({ data: { ownerId: 'u1', title: `t${i}` } }, {})
      const replica = new Replica(t, undefined)
      const first = await replica.pullPage(5)
      expect(first).toMatchObject({ hasMore: true, remaining: 12 })
      // Changes during the initial load are not lost.
      const late = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'late' } },
        {},
      )) as RecordWithMeta
      const firstUid = first.upserts[0]!.record.uid
      await t.services.todos!.delete({ uid: firstUid }, {})
      await replica.pullAll(5)
      expect(replica.records.has(late.record.uid)).toBe(true)
      expect(replica.records.has(firstUid)).toBe(false)
      expect(replica.state()).toEqual(await serverState(t, undefined))
    })

    it('answers CHECKPOINT_EXPIRED once the log was pruned past the checkpoint', async () => {
      let now = Date.now()
      const t = env().create({ now: () => now })
      await t.services.todos!.create({ data: { ownerId: 'u1', title: 'a' } }, {})
      const replica = new Replica(t, undefined)
      await replica.full()
      await t.services.todos!.create({ data: { ownerId: 'u1', title: 'b' } }, {})
      now += 3_600_000
      const pruned = await t.pruneChangeLog({ olderThanMs: 60_000 })
      expect(pruned.changes).toBe(2)
      const reply = await t.handle('sync:pull', { model: 'todos', checkpoint: replica.checkpoint }, {})
      expect(reply.error?.code).toBe('CHECKPOINT_EXPIRED')
      await replica.full()
      expect(replica.records.size).toBe(2)
    })

    it('full reconcile and delta end in the same state', async () => {
      const ops = fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant('create' as const),
            owner: fc.constantFrom('u1', 'u2'),
            priority: fc.integer({ min: 0, max: 9 }),
          }),
          fc.record({
            kind: fc.constant('update' as const),
            pick: fc.nat(),
            priority: fc.integer({ min: 0, max: 9 }),
            owner: fc.constantFrom('u1', 'u2'),
          }),
          fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
          fc.record({
            kind: fc.constant('increment' as const),
            pick: fc.nat(),
            by: fc.integer({ min: -3, max: 5 }),
          }),
          fc.record({ kind: fc.constant('pull' as const) }),
          fc.record({ kind: fc.constant('snapshot' as const) }),
        ),
        { minLength: 5, maxLength: 30 },
      )
      await fc.assert(
        fc.asyncProperty(
          ops,
          fc.constantFrom<Where | undefined>(undefined, { priority: { gte: 3, lt: 8 } }, { ownerId: 'u1' }),
          async (list, where) => {
            await env().database.reset()
            const t = env().create()
            const s = t.services.todos!
            const uids: string[] = []
            const delta = new Replica(t, where)
            const stale = new Replica(t, where)
            await delta.pullAll(4)
            for (const op of list) {
              const target = uids.length ? uids[('pick' in op ? op.pick : 0) % uids.length]! : undefined
              if (op.kind === 'create') {
                const r = (await s.create(
                  { data: { ownerId: op.owner, title: 'x', priority: op.priority } },
                  {},
                )) as RecordWithMeta
                uids.push(r.record.uid)
              } else if (op.kind === 'update' && target) {
                await s.update({ uid: target, patch: { priority: op.priority, ownerId: op.owner } }, {})
              } else if (op.kind === 'delete' && target) {
                await s.delete({ uid: target }, {})
              } else if (op.kind === 'increment' && target) {
                await t.push(
                  {
                    clientId: 'c',
                    changes: [
                      {
                        id: uuidv7(),
                        model: 'todos',
                        uid: target,
                        op: 'increment',
                        deltas: { likes: op.by },
                        clock: t.core.hlc.now(),
                      },
                    ],
                  },
                  {},
                )
              } else if (op.kind === 'pull') {
                await delta.pullPage(3)
              } else if (op.kind === 'snapshot') {
                await stale.full()
              }
            }
            await delta.pullAll(3)
            const fresh = new Replica(t, where)
            await fresh.full()
            await stale.full()
            const truth = await serverState(t, where)
            expect(delta.state()).toEqual(truth)
            expect(fresh.state()).toEqual(truth)
            expect(stale.state()).toEqual(truth)
          },
        ),
        { numRuns: 12 },
      )
    })
  })
}
