import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { RecordWithMeta } from '../../protocol.js'
import type { ContractEnv } from './env.js'
import { Replica } from './replica.js'

const ALICE = { userId: 'alice' }
const BOB = { userId: 'bob' }

export function scopeContract(env: () => ContractEnv): void {
  describe('scope', () => {
    it('a user cannot read, sync or write outside their scope', async () => {
      const t = env().create()
      const s = t.services.todos!
      const mine = (await s.create({ data: { ownerId: 'alice', title: 'mine' } }, ALICE)) as RecordWithMeta
      const bobs = (await s.create({ data: { ownerId: 'bob', title: 'secret' } }, BOB)) as RecordWithMeta
      const aliceReplica = new Replica(t, undefined, ALICE)
      await aliceReplica.pullAll()
      const checkpoint = aliceReplica.checkpoint

      // Read
      expect(await s.findUnique({ uid: bobs.record.uid }, ALICE)).toBeNull()
      expect((await s.findMany({}, ALICE)).map((r) => r.record.uid)).toEqual([mine.record.uid])
      expect(await s.findMany({ where: { ownerId: 'bob' } }, ALICE)).toEqual([])

      // Full sync: naming Bob's uid gets an eviction, never his data; a tombstone for it deletes nothing.
      const full = await t.fullSync(
        {
          model: 'todos',
          metadata: {
            [bobs.record.uid]: {
              created_at: bobs.meta.created_at,
              updated_at: '2000-01-01T00:00:00.000Z',
              deleted_at: null,
            },
          },
        },
        ALICE,
      )
      expect(JSON.stringify(full)).not.toContain('secret')
      expect(full.evictClient).toEqual([bobs.record.uid])
      await t.fullSync(
        {
          model: 'todos',
          metadata: {
            [bobs.record.uid]: {
              created_at: bobs.meta.created_at,
              updated_at: bobs.meta.updated_at,
              deleted_at: new Date().toISOString(),
            },
          },
        },
        ALICE,
      )
      expect(await s.findUnique({ uid: bobs.record.uid }, BOB)).not.toBeNull()

      // Writes: Bob's record, moving hers to Bob, creating one for Bob.
      const before = await env().snapshot()
      const push = await t.push(
        {
          clientId: 'alice-laptop',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid: bobs.record.uid,
              op: 'update',
              patch: { title: 'pwned' },
              clock: t.core.hlc.now(),
            },
            { id: '2', model: 'todos', uid: bobs.record.uid, op: 'delete', clock: t.core.hlc.now() },
            {
              id: '3',
              model: 'todos',
              uid: bobs.record.uid,
              op: 'increment',
              deltas: { likes: 100 },
              clock: t.core.hlc.now(),
            },
            {
              id: '4',
              model: 'todos',
              uid: mine.record.uid,
              op: 'update',
              patch: { ownerId: 'bob' },
              clock: t.core.hlc.now(),
            },
            {
              id: '5',
              model: 'todos',
              uid: uuidv7(),
              op: 'create',
              data: { ownerId: 'bob', title: 'spam' },
              clock: t.core.hlc.now(),
            },
            {
              id: '6',
              model: 'todos',
              uid: bobs.record.uid,
              op: 'create',
              data: { ownerId: 'alice', title: 'steal' },
              clock: t.core.hlc.now(),
            },
          ],
        },
        ALICE,
      )
      expect(push.outcomes.map((o) => (o.status === 'rejected' ? o.error.code : o.status))).toEqual(
        Array(6).fill('FORBIDDEN'),
      )
      expect(JSON.stringify(push)).not.toContain('secret')
      await expect(s.update({ uid: bobs.record.uid, patch: { title: 'pwned' } }, ALICE)).rejects.toThrow()
      expect(await env().snapshot()).toEqual(before)

      // Delta: Bob's changes never reach Alice, not even as a uid.
      await s.update({ uid: bobs.record.uid, patch: { title: 'still secret' } }, BOB)
      await s.create({ data: { ownerId: 'bob', title: 'another secret' } }, BOB)
      await s.delete({ uid: bobs.record.uid }, BOB)
      const page = await t.pull({ model: 'todos', checkpoint: checkpoint! }, ALICE)
      expect(page.upserts).toEqual([])
      expect(page.deletes).toEqual([])
      expect(page.evictions).toEqual([])
      const initial = await t.pull({ model: 'todos', where: { ownerId: 'bob' }, checkpoint: '0' }, ALICE)
      expect(initial.upserts).toEqual([])
    })
  })
}
