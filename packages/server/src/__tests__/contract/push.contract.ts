import { hlcWallMs } from '@tidesync/protocol'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, ChangeOutcome, PushResult, RecordWithMeta } from '../../protocol.js'
import { clientClock } from '../fixtures/clock.js'
import type { ContractEnv } from './env.js'

const T0 = Date.UTC(2026, 0, 1)

function applied(outcome: ChangeOutcome | undefined) {
  if (outcome?.status !== 'applied') throw new Error(`expected applied, got ${JSON.stringify(outcome)}`)
  return outcome
}

export function pushContract(env: () => ContractEnv): void {
  describe('sync:push', () => {
    const setup = async (overrides: Parameters<ContractEnv['create']>[0] = {}) => {
      const t = env().create({ now: () => T0 + 60_000, ...overrides })
      const uid = uuidv7()
      const pushOf = (clientId: string, changes: Change[]) =>
        t.push({ clientId, changes }, {}) as Promise<PushResult>
      await pushOf('seed', [
        {
          id: 'c0',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'u1', title: 'base', priority: 1 },
          clock: clientClock(T0, 'seed'),
        },
      ])
      return { t, uid, pushOf }
    }

    it('a push retried after a lost acknowledgement applies once (counters too)', async () => {
      const { t, uid, pushOf } = await setup()
      const changes: Change[] = [
        {
          id: 'a1',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 5 },
          clock: clientClock(T0 + 1000, 'a'),
        },
        {
          id: 'a2',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'renamed' },
          clock: clientClock(T0 + 1001, 'a'),
        },
      ]
      const first = await pushOf('client-a', changes)
      expect(first.outcomes.map((o) => o.status)).toEqual(['applied', 'applied'])
      const retry = await pushOf('client-a', changes)
      expect(retry.outcomes).toEqual([
        { id: 'a1', status: 'duplicate' },
        { id: 'a2', status: 'duplicate' },
      ])
      // The same ids from another client are other changes.
      await pushOf('client-b', [changes[0]!])
      const found = (await t.services.todos!.findUnique({ uid }, {}))!
      expect(found.record).toMatchObject({ likes: 10, title: 'renamed' })
    })

    it('last write wins per field: offline edits of different fields both survive', async () => {
      const { t, uid, pushOf } = await setup()
      // B edited later but reaches the server first.
      await pushOf('b', [
        {
          id: 'b1',
          model: 'todos',
          uid,
          op: 'update',
          patch: { done: true, title: 'from b' },
          clock: clientClock(T0 + 2000, 'b'),
        },
      ])
      const outcome = applied(
        (
          await pushOf('a', [
            {
              id: 'a1',
              model: 'todos',
              uid,
              op: 'update',
              patch: { priority: 7, title: 'from a' },
              clock: clientClock(T0 + 1000, 'a'),
            },
          ])
        ).outcomes[0],
      )
      expect(outcome.record).toMatchObject({ done: true, priority: 7, title: 'from b' })
      expect(outcome.meta.clocks.title).toBe(clientClock(T0 + 2000, 'b'))
      expect(outcome.meta.clocks.priority).toBe(clientClock(T0 + 1000, 'a'))
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record).toMatchObject({
        done: true,
        priority: 7,
        title: 'from b',
      })
    })

    it('a clock too far ahead is clamped to the server clock, and serverClock moves past clients', async () => {
      const { uid, pushOf } = await setup()
      const serverNow = T0 + 60_000
      const far = await pushOf('skewed', [
        {
          id: 's1',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'from the future' },
          clock: clientClock(serverNow + 86_400_000, 'skewed'),
        },
      ])
      const clamped = applied(far.outcomes[0]).meta.clocks.title!
      expect(hlcWallMs(clamped)).toBeLessThanOrEqual(serverNow)
      // An honest later write (within the allowed skew) still wins over the clamped one.
      const honest = await pushOf('honest', [
        {
          id: 'h1',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'honest' },
          clock: clientClock(serverNow + 5000, 'honest'),
        },
      ])
      expect(applied(honest.outcomes[0]).record).toMatchObject({ title: 'honest' })
      expect(honest.serverClock > clientClock(serverNow + 5000, 'honest')).toBe(true)
    })

    it('counter increments from two clients add up', async () => {
      const { t, uid, pushOf } = await setup()
      await pushOf('a', [
        {
          id: 'i',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 3 },
          clock: clientClock(T0 + 10, 'a'),
        },
      ])
      await pushOf('b', [
        {
          id: 'i',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 4 },
          clock: clientClock(T0 + 5, 'b'),
        },
      ])
      await pushOf('b', [
        {
          id: 'j',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: -1 },
          clock: clientClock(T0 + 6, 'b'),
        },
      ])
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record.likes).toBe(6)
    })

    it('a delete wins, and a stale create never resurrects the record', async () => {
      const { t, uid, pushOf } = await setup()
      await pushOf('a', [{ id: 'd', model: 'todos', uid, op: 'delete', clock: clientClock(T0 + 1000, 'a') }])
      const late = await pushOf('b', [
        {
          id: 'u',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'too late' },
          clock: clientClock(T0 + 5000, 'b'),
        },
        {
          id: 'c',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'u1', title: 'stale' },
          clock: clientClock(T0 + 500, 'b'),
        },
        {
          id: 'i',
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: 1 },
          clock: clientClock(T0 + 5000, 'b'),
        },
      ])
      for (const outcome of late.outcomes) {
        const o = applied(outcome)
        expect(o.record).toBeNull()
        expect(o.meta.deleted_at).not.toBeNull()
      }
      expect(await t.services.todos!.findUnique({ uid }, {})).toBeNull()
      // A create newer than the delete re-creates it.
      const again = await pushOf('b', [
        {
          id: 'c2',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'u1', title: 'reborn' },
          clock: clientClock(T0 + 9000, 'b'),
        },
      ])
      expect(applied(again.outcomes[0]).record).toMatchObject({ title: 'reborn', likes: 0 })
    })

    it('a refused change is rejected alone; the others apply', async () => {
      const { t, uid, pushOf } = await setup()
      const before = await env().snapshot()
      const result = await pushOf('a', [
        { id: '1', model: 'todos', uid, op: 'update', patch: { nope: 1 }, clock: clientClock(T0 + 1, 'a') },
        { id: '2', model: 'ghosts', uid, op: 'delete', clock: clientClock(T0 + 1, 'a') },
        { id: '3', model: 'todos', uid, op: 'update', patch: { likes: 9 }, clock: clientClock(T0 + 1, 'a') },
        {
          id: '4',
          model: 'todos',
          uid: uuidv7(),
          op: 'update',
          patch: { title: 'x' },
          clock: clientClock(T0 + 1, 'a'),
        },
        { id: '5', model: 'todos', uid, op: 'update', patch: { title: 'ok' }, clock: 'yesterday' },
      ] as Change[])
      expect(result.outcomes.map((o) => (o.status === 'rejected' ? o.error.code : o.status))).toEqual([
        'UNKNOWN_COLUMN',
        'UNKNOWN_MODEL',
        'BAD_REQUEST',
        'NOT_FOUND',
        'INVALID_TYPE',
      ])
      expect(await env().snapshot()).toEqual(before)
      const ok = await pushOf('a', [
        {
          id: '6',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'ok' },
          clock: clientClock(T0 + 1, 'a'),
        },
      ])
      expect(applied(ok.outcomes[0]).record).toMatchObject({ title: 'ok' })
      expect((await t.services.todos!.findUnique({ uid }, {}))!.record.title).toBe('ok')
    })

    it('refuses a push over maxChangesPerPush as a whole', async () => {
      const { t, uid } = await setup({ maxChangesPerPush: 2 })
      const changes = [1, 2, 3].map((i) => ({
        id: `${i}`,
        model: 'todos',
        uid,
        op: 'increment',
        deltas: { likes: 1 },
        clock: clientClock(T0 + i, 'a'),
      }))
      const reply = await t.handle('sync:push', { clientId: 'a', changes }, {})
      expect(reply.error?.code).toBe('PAYLOAD_TOO_LARGE')
      expect(((await t.services.todos!.findUnique({ uid }, {})) as RecordWithMeta).record.likes).toBe(0)
    })
  })
}
