import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, ChangeOutcome, JsonValue, PushResult } from '../../protocol.js'
import { clientClock } from '../fixtures/clock.js'
import { todos } from '../fixtures/schema.js'
import type { ContractEnv, TestCtx } from './env.js'

const T0 = Date.UTC(2026, 0, 1)

function statuses(result: PushResult): string[] {
  return result.outcomes.map((o) => (o.status === 'rejected' ? `rejected:${o.error.code}` : o.status))
}

function revOf(outcome: ChangeOutcome): number {
  if (outcome.status !== 'applied') throw new Error(`expected applied, got ${JSON.stringify(outcome)}`)
  return outcome.meta.rev
}

/** Pushes applied in batches (several changes per transaction), as the server does by default. */
export function pushBatchContract(env: () => ContractEnv): void {
  describe('sync:push in batches', () => {
    it('a push of 500 changes with 2 bad ones commits 498, rejects the 2 with reasons, and a retry applies nothing twice', async () => {
      // 200 changes per transaction: the push spans 3 transactions, and records created in one
      // are updated and incremented in the next (and some in the same one).
      const t = env().create({ maxChangesPerTransaction: 200 })
      const ctx: TestCtx = { userId: 'u1' }
      const uids = Array.from({ length: 250 }, () => uuidv7())
      const changes: Change[] = []
      for (let i = 0; i < 500; i++) {
        const clock = clientClock(T0 + i, 'a')
        if (i < 250) {
          // i = 77 creates a record outside the user's scope: refused inside the transaction.
          const owner = i === 77 ? 'u2' : 'u1'
          changes.push({
            id: `c${i}`,
            model: 'todos',
            uid: uids[i]!,
            op: 'create',
            data: { ownerId: owner, title: `t${i}` },
            clock,
          })
        } else if (i < 400) {
          const uid = uids[100 + (i - 250)]!
          // i = 300 names a column the model does not have: refused before any transaction.
          const patch: Record<string, JsonValue> = i === 300 ? { nope: 1 } : { title: `edited ${i}` }
          changes.push({ id: `c${i}`, model: 'todos', uid, op: 'update', patch, clock })
        } else {
          const uid = uids[150 + (i - 400)]!
          changes.push({
            id: `c${i}`,
            model: 'todos',
            uid,
            op: 'increment',
            deltas: { likes: (i % 3) + 1 },
            clock,
          })
        }
      }

      const first = (await t.push({ clientId: 'device-1', changes }, ctx)) as PushResult
      const expected = changes.map((_, i) =>
        i === 77 ? 'rejected:FORBIDDEN' : i === 300 ? 'rejected:UNKNOWN_COLUMN' : 'applied',
      )
      expect(statuses(first)).toEqual(expected)
      const reasons = first.outcomes.flatMap((o) =>
        o.status === 'rejected' ? [[o.id, o.error.message]] : [],
      )
      expect(reasons).toEqual([
        ['c77', expect.stringMatching(/scope/)],
        ['c300', expect.stringMatching(/changes\[300\]\.patch\.nope/)],
      ])

      // Every applied change got its own revision, in push order.
      const revs = first.outcomes.filter((o) => o.status === 'applied').map(revOf)
      expect(revs).toEqual([...revs].sort((a, b) => a - b))
      expect(new Set(revs).size).toBe(498)

      // The stored state: 249 records, the edits and increments each applied once.
      const rows = await t.services.todos!.findMany({}, ctx)
      expect(rows).toHaveLength(249)
      const byUid = new Map(rows.map((r) => [r.record.uid, r]))
      expect(byUid.has(uids[77]!)).toBe(false)
      for (let k = 0; k < 250; k++) {
        if (k === 77) continue
        const row = byUid.get(uids[k]!)!
        const editedAt = k >= 100 ? 250 + (k - 100) : -1
        const title = editedAt >= 0 && editedAt !== 300 ? `edited ${editedAt}` : `t${k}`
        const likes = k >= 150 ? ((400 + (k - 150)) % 3) + 1 : 0
        expect(row.record).toMatchObject({ title, likes })
        // The record's metadata carries its last change's revision.
        const last = k >= 150 ? 400 + (k - 150) : editedAt >= 0 && editedAt !== 300 ? editedAt : k
        expect(row.meta.rev).toBe(revOf(first.outcomes[last]!))
      }
      const stored = await env().snapshot()
      expect(stored).toMatchObject({ changes: [{ n: 498 }], applied: [{ n: 498 }] })

      // The acknowledgement was lost: the client sends the same push again.
      const retry = (await t.push({ clientId: 'device-1', changes }, ctx)) as PushResult
      expect(statuses(retry)).toEqual(expected.map((s) => (s === 'applied' ? 'duplicate' : s)))
      expect(await env().snapshot()).toEqual(stored)
    })

    it('a refusal inside a transaction rolls back alone, whatever the change (create, update, delete, canWrite)', async () => {
      const t = env().create({
        todos: { canWrite: (_ctx, record) => record.title !== 'forbidden' },
      })
      const ctx: TestCtx = { userId: 'u1' }
      const [a, b, c] = [uuidv7(), uuidv7(), uuidv7()]
      const before = await t.push(
        {
          clientId: 'seed',
          changes: [
            {
              id: 's1',
              model: 'todos',
              uid: a,
              op: 'create',
              data: { ownerId: 'u1', title: 'a' },
              clock: clientClock(T0, 's'),
            },
            {
              id: 's2',
              model: 'todos',
              uid: b,
              op: 'create',
              data: { ownerId: 'u2', title: 'b' },
              clock: clientClock(T0, 's'),
            },
          ],
        },
        {},
      )
      expect(statuses(before)).toEqual(['applied', 'applied'])
      const pushed: Change[] = [
        {
          id: '1',
          model: 'todos',
          uid: c,
          op: 'create',
          data: { ownerId: 'u1', title: 'c' },
          clock: clientClock(T0 + 1, 'a'),
        },
        {
          id: '2',
          model: 'todos',
          uid: uuidv7(),
          op: 'create',
          data: { ownerId: 'u1', title: 'forbidden' },
          clock: clientClock(T0 + 2, 'a'),
        },
        {
          id: '3',
          model: 'todos',
          uid: a,
          op: 'update',
          patch: { title: 'forbidden' },
          // Newer than change 6: it would win the title, so the write check decides (also on retry).
          clock: clientClock(T0 + 9, 'a'),
        },
        { id: '4', model: 'todos', uid: b, op: 'delete', clock: clientClock(T0 + 4, 'a') },
        {
          id: '5',
          model: 'todos',
          uid: uuidv7(),
          op: 'increment',
          deltas: { likes: 1 },
          clock: clientClock(T0 + 5, 'a'),
        },
        {
          id: '6',
          model: 'todos',
          uid: a,
          op: 'update',
          patch: { title: 'a2' },
          clock: clientClock(T0 + 6, 'a'),
        },
        {
          id: '7',
          model: 'todos',
          uid: c,
          op: 'increment',
          deltas: { likes: 2 },
          clock: clientClock(T0 + 7, 'a'),
        },
      ]
      const result = await t.push({ clientId: 'device-1', changes: pushed }, ctx)
      expect(statuses(result)).toEqual([
        'applied',
        'rejected:FORBIDDEN',
        'rejected:FORBIDDEN',
        'rejected:FORBIDDEN',
        'rejected:NOT_FOUND',
        'applied',
        'applied',
      ])
      const records = (await t.services.todos!.findMany({}, {})).map((r) => r.record)
      expect(records.map((r) => [r.title, r.likes]).sort()).toEqual([
        ['a2', 0],
        ['b', 0],
        ['c', 2],
      ])
      // Only the applied ids are remembered: a retry judges the refused ones again.
      const stored = await env().snapshot()
      expect(stored).toMatchObject({ applied: [{ n: 2 + 3 }] })
      const retry = await t.push({ clientId: 'device-1', changes: pushed }, ctx)
      expect(statuses(retry)).toEqual([
        'duplicate',
        'rejected:FORBIDDEN',
        'rejected:FORBIDDEN',
        'rejected:FORBIDDEN',
        'rejected:NOT_FOUND',
        'duplicate',
        'duplicate',
      ])
      expect(await env().snapshot()).toEqual(stored)
    })

    it('two copies of one push sent at once apply each change once', async () => {
      const t = env().create()
      const uid = uuidv7()
      await t.push(
        {
          clientId: 'seed',
          changes: [
            {
              id: 's',
              model: 'todos',
              uid,
              op: 'create',
              data: { ownerId: 'u1', title: 'x' },
              clock: clientClock(T0, 's'),
            },
          ],
        },
        {},
      )
      const changes: Change[] = Array.from({ length: 60 }, (_, i) => ({
        id: `i${i}`,
        model: 'todos',
        uid,
        op: 'increment' as const,
        deltas: { likes: i + 1 },
        clock: clientClock(T0 + i + 1, 'a'),
      }))
      const [one, two] = await Promise.all([
        t.push({ clientId: 'device-1', changes }, {}),
        t.push({ clientId: 'device-1', changes }, {}),
      ])
      for (let i = 0; i < changes.length; i++) {
        const pair = [one.outcomes[i]!.status, two.outcomes[i]!.status].sort()
        expect(pair).toEqual(['applied', 'duplicate'])
      }
      const found = await t.services.todos!.findUnique({ uid }, {})
      expect(found!.record.likes).toBe((60 * 61) / 2)
    })

    it('a row written outside tidesync, changed twice in one push, gets its metadata and both changes', async () => {
      const t = env().create()
      const uid = uuidv7()
      await env().database.db.insert(todos).values({ uid, ownerId: 'u1', title: 'raw', likes: 2 })
      const result = await t.push(
        {
          clientId: 'device-1',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'first' },
              clock: clientClock(T0 + 1, 'a'),
            },
            {
              id: '2',
              model: 'todos',
              uid,
              op: 'increment',
              deltas: { likes: 3 },
              clock: clientClock(T0 + 2, 'a'),
            },
            {
              id: '3',
              model: 'todos',
              uid,
              op: 'update',
              patch: { done: true },
              clock: clientClock(T0 + 3, 'a'),
            },
          ],
        },
        {},
      )
      expect(statuses(result)).toEqual(['applied', 'applied', 'applied'])
      expect(result.outcomes[2]).toMatchObject({ record: { title: 'first', likes: 5, done: true } })
      const found = await t.services.todos!.findUnique({ uid }, {})
      expect(found).toMatchObject({
        record: { title: 'first', likes: 5, done: true },
        meta: {
          rev: revOf(result.outcomes[2]!),
          clocks: { title: clientClock(T0 + 1, 'a'), done: clientClock(T0 + 3, 'a') },
        },
      })
    })

    it('a record changed several times in one transaction gets one revision per change', async () => {
      const t = env().create()
      const uid = uuidv7()
      const result = await t.push(
        {
          clientId: 'device-1',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'create',
              data: { ownerId: 'u1', title: 'one' },
              clock: clientClock(T0 + 1, 'a'),
            },
            {
              id: '2',
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'two' },
              clock: clientClock(T0 + 2, 'a'),
            },
            // Older than the last write of the title: loses, changes nothing.
            {
              id: '3',
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'stale' },
              clock: clientClock(T0 + 1, 'b'),
            },
            { id: '4', model: 'todos', uid, op: 'delete', clock: clientClock(T0 + 4, 'a') },
            {
              id: '5',
              model: 'todos',
              uid,
              op: 'create',
              data: { ownerId: 'u1', title: 'again' },
              clock: clientClock(T0 + 5, 'a'),
            },
          ],
        },
        {},
      )
      expect(statuses(result)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied'])
      const [r1, r2, r3, r4, r5] = result.outcomes.map(revOf)
      expect(r1! < r2! && r2! < r4! && r4! < r5!).toBe(true)
      // The losing update shows the record as the write before it left it.
      expect(r3).toBe(r2)
      expect(result.outcomes[2]).toMatchObject({ record: { title: 'two' } })
      expect(result.outcomes[3]).toMatchObject({ record: null })
      const found = await t.services.todos!.findUnique({ uid }, {})
      expect(found).toMatchObject({ record: { title: 'again' }, meta: { rev: r5, deleted_at: null } })
      // A client that pulls from before the push gets the final state.
      const pulled = await t.pull({ model: 'todos', checkpoint: `r:${r1! - 1}` }, {})
      expect(pulled.upserts.map((u) => [u.record.title, u.meta.rev])).toEqual([['again', r5]])
      expect(await env().snapshot()).toMatchObject({ changes: [{ n: 4 }] })
    })
  })
}
