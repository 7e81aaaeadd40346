import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, PushResult, RecordWithMeta } from '../../protocol.js'
import { clientClock } from '../fixtures/clock.js'
import type { ContractEnv } from './env.js'

const T0 = Date.UTC(2026, 0, 1)

/** Counts the transactions a database runs (drizzle's BEGIN). */
function countTransactions(env: ContractEnv): { db: ContractEnv['database']['db']; count: () => number } {
  let begins = 0
  const db = env.database.withQueryLog((query) => {
    if (/^\s*begin/i.test(query)) begins++
  })
  return { db, count: () => begins }
}

/** Concurrent writes of many callers share transactions, each caller keeping its own outcomes. */
export function groupCommitContract(env: () => ContractEnv): void {
  describe('group commit', () => {
    it('pushes of 40 clients at once share transactions; each gets its own outcome and revision', async () => {
      const counted = countTransactions(env())
      const t = env().create({ db: counted.db, groupCommit: { maxTransactions: 1 } })
      const users = Array.from({ length: 40 }, (_, i) => `u${i}`)
      const uids = users.map(() => uuidv7())
      const results = (await Promise.all(
        users.map((user, i) =>
          t.push(
            {
              clientId: `device-${user}`,
              changes: [
                {
                  id: 'c1', // the same id for every client: ids are per client
                  model: 'todos',
                  uid: uids[i]!,
                  op: 'create',
                  data: { ownerId: user, title: `by ${user}` },
                  clock: clientClock(T0 + i, user),
                },
              ],
            },
            { userId: user },
          ),
        ),
      )) as PushResult[]
      expect(results.map((r) => r.outcomes[0]!.status)).toEqual(users.map(() => 'applied'))
      const revs = results.map((r) => (r.outcomes[0] as { meta: { rev: number } }).meta.rev)
      expect(new Set(revs).size).toBe(40)
      // Fewer transactions than pushes: the ones waiting shared the next commit.
      expect(counted.count()).toBeLessThan(40)
      for (const [i, user] of users.entries()) {
        const row = await t.services.todos!.findUnique({ uid: uids[i]! }, { userId: user })
        expect(row?.record.title).toBe(`by ${user}`)
      }
      // A retry of every push answers duplicate, applies nothing twice.
      const again = (await Promise.all(
        users.map((user, i) =>
          t.push(
            {
              clientId: `device-${user}`,
              changes: [
                {
                  id: 'c1',
                  model: 'todos',
                  uid: uids[i]!,
                  op: 'update',
                  patch: { title: 'retried' },
                  clock: clientClock(T0 + 1000, user),
                },
              ],
            },
            { userId: user },
          ),
        ),
      )) as PushResult[]
      expect(again.map((r) => r.outcomes[0]!.status)).toEqual(users.map(() => 'duplicate'))
    })

    it('a change refused for one caller (scope) does not touch the others in the same transaction', async () => {
      const t = env().create({ groupCommit: { maxTransactions: 1 } })
      const mine = uuidv7()
      const theirs = (await t.services.todos!.create(
        { data: { ownerId: 'bob', title: 'bob owns it' } },
        { userId: 'bob' },
      )) as RecordWithMeta
      const pushOf = (user: string, changes: Change[]) =>
        t.push({ clientId: `d-${user}`, changes }, { userId: user }) as Promise<PushResult>
      const [alice, mallory, bob] = await Promise.all([
        pushOf('alice', [
          {
            id: 'a1',
            model: 'todos',
            uid: mine,
            op: 'create',
            data: { ownerId: 'alice', title: 'alice' },
            clock: clientClock(T0, 'alice'),
          },
        ]),
        // Mallory tries to edit Bob's record: refused by her scope, although Bob's own
        // change to it may share the transaction.
        pushOf('mallory', [
          {
            id: 'm1',
            model: 'todos',
            uid: theirs.record.uid,
            op: 'update',
            patch: { title: 'hacked' },
            clock: clientClock(T0 + 5, 'mallory'),
          },
        ]),
        pushOf('bob', [
          {
            id: 'b1',
            model: 'todos',
            uid: theirs.record.uid,
            op: 'increment',
            deltas: { likes: 2 },
            clock: clientClock(T0 + 1, 'bob'),
          },
        ]),
      ])
      expect(alice.outcomes[0]!.status).toBe('applied')
      // Outside Mallory's scope the record does not exist for her.
      expect(mallory.outcomes[0]).toMatchObject({ status: 'rejected' })
      expect(bob.outcomes[0]!.status).toBe('applied')
      const row = await t.services.todos!.findUnique({ uid: theirs.record.uid }, { userId: 'bob' })
      expect(row?.record).toMatchObject({ title: 'bob owns it', likes: 2 })
      // Mallory's refused id is forgotten (a retry is judged again); the others are remembered.
      const retry = (await pushOf('mallory', [
        {
          id: 'm1',
          model: 'todos',
          uid: theirs.record.uid,
          op: 'update',
          patch: { title: 'hacked' },
          clock: clientClock(T0 + 6, 'mallory'),
        },
      ])) as PushResult
      expect(retry.outcomes[0]).toMatchObject({ status: 'rejected' })
    })

    it('service writes of many callers at once: every one applied once, the newest clock wins', async () => {
      const t = env().create({ groupCommit: { maxTransactions: 2 } })
      const record = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'shared' } },
        { userId: 'u1' },
      )) as RecordWithMeta
      const uid = record.record.uid
      // 30 updates of one record by one owner from 30 calls, and 30 creates of others.
      const writes = await Promise.all([
        ...Array.from({ length: 30 }, (_, i) =>
          t.services.todos!.update({ uid, patch: { title: `edit ${i}` } }, { userId: 'u1' }),
        ),
        ...Array.from({ length: 30 }, (_, i) =>
          t.services.todos!.create({ data: { ownerId: `w${i}`, title: `w${i}` } }, { userId: `w${i}` }),
        ),
      ])
      expect(writes).toHaveLength(60)
      const revs = writes.map((w) => (w as RecordWithMeta).meta.rev)
      expect(new Set(revs).size).toBe(60)
      // The record ends with the edit of the newest clock (service clocks grow in call order).
      const row = await t.services.todos!.findUnique({ uid }, { userId: 'u1' })
      expect(row?.record.title).toBe('edit 29')
    })

    it('groupCommit options are checked at start-up', () => {
      expect(() => env().create({ groupCommit: { maxTransactions: 0 } })).toThrow(/maxTransactions/)
      expect(() => env().create({ groupCommit: { maxTransactions: 1.5 } })).toThrow(/maxTransactions/)
    })
  })
}
