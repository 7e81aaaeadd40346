import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, PushResult } from '../../protocol.js'
import {
  changesOf,
  converges,
  databaseState,
  metaOf,
  type SyncClient,
  until,
} from '../fixtures/capture-env.js'
import { clientClock } from '../fixtures/clock.js'
import type { CaptureEnv } from './capture-env.js'

/** Pushes changes as a client's outbox would (over its socket). */
async function push(client: SyncClient, clientId: string, changes: Change[]): Promise<PushResult> {
  return client.request<PushResult>('sync:push', { clientId, changes })
}

/** The stored row, straight from the table (no write-buffer overlay). */
async function storedRow(env: CaptureEnv, uid: string) {
  return (
    await env.db.rows<{ title: string; likes: number; priority: number; done: boolean }>(
      'SELECT title, likes, priority, done FROM todos WHERE uid = $1',
      [uid],
    )
  )[0]
}

const SECOND = 1000

/**
 * Captured writes merge like any other: server clocks for the changed columns (per-field LWW
 * against offline edits), counters add up, a captured delete is a tombstone.
 */
export function captureMergeContract(env: () => CaptureEnv): void {
  describe('change capture: merging with offline client edits', () => {
    for (const buffered of [false, true]) {
      it(`an external counter increment adds up with offline client increments${buffered ? ' (write buffer)' : ''}`, async () => {
        const e = env()
        const server = await e.start({ writeBuffer: buffered })
        const uid = uuidv7()
        await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'liked')`)
        const live = await e.open(server)
        const phone = await e.open(server, 'admin', { live: false })
        phone.offline()
        // Made offline, before the SQL write: older clocks.
        const offlineClock = clientClock(Date.now() - 30 * SECOND, 'phone')
        const like = (id: string, n: number): Change => ({
          id,
          model: 'todos',
          uid,
          op: 'increment',
          deltas: { likes: n },
          clock: offlineClock,
        })

        await e.db.exec(`UPDATE todos SET likes = likes + 3 WHERE uid = '${uid}'`)
        await until(() => live.records.get(uid)?.record.likes === 3, 'the live client to see 3 likes')

        await phone.online()
        expect(phone.records.get(uid)!.record.likes).toBe(3)
        const pushed = await push(phone, 'phone', [like('p1', 2), like('p2', 4)])
        expect(pushed.outcomes.map((o) => o.status)).toEqual(['applied', 'applied'])
        await until(() => live.records.get(uid)?.record.likes === 9, 'the live client to see 3 + 2 + 4 likes')
        // Another SQL increment while the buffer holds the client's deltas. (With a buffer, reads
        // show the buffer's cached value until it flushes: see the report of issue 15's tests.)
        await e.db.exec(`UPDATE todos SET likes = likes + 1 WHERE uid = '${uid}'`)
        if (buffered) {
          expect((await storedRow(e, uid))!.likes).toBe(4)
          await server.buffer!.flush()
        }
        await until(() => live.records.get(uid)?.record.likes === 10, 'the live client to see 10 likes')
        expect((await storedRow(e, uid))!.likes).toBe(10)
        expect((await server.tidesync.services.todos!.findUnique({ uid }, {}))!.record.likes).toBe(10)
        // A retried push is a duplicate: nothing is added twice.
        const again = await push(phone, 'phone', [like('p1', 2), like('p2', 4)])
        expect(again.outcomes.map((o) => o.status)).toEqual(['duplicate', 'duplicate'])
        await e.db.exec(`UPDATE todos SET likes = likes + 100 WHERE uid = '${uid}'`)
        await until(() => live.records.get(uid)?.record.likes === 110, 'the live client to see 110 likes')
        await phone.pull()
        expect(phone.records.get(uid)!.record.likes).toBe(110)
        const truth = await converges(live, server, 'the live client to converge')
        expect(truth[uid]!.likes).toBe(110)
        expect((await storedRow(e, uid))!.likes).toBe(110)
        // Counters take no clock, whoever wrote them.
        expect((await metaOf(e.db.database, uid))!.clocks.likes).toBeUndefined()
      })
    }

    it('per-field last-write-wins: an external UPDATE gets a server clock for the columns it changed', async () => {
      const e = env()
      const server = await e.start()
      const uid = uuidv7()
      const created = clientClock(Date.now() - 120 * SECOND, 'laptop')
      const live = await e.open(server)
      const phone = await e.open(server, 'admin', { live: false })
      await push(phone, 'laptop', [
        {
          id: 'c1',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'original', priority: 0, done: false },
          clock: created,
        },
      ])
      await phone.pull()
      phone.offline()
      // Offline edits, made before the SQL write (older clocks).
      const offline = clientClock(Date.now() - 60 * SECOND, 'phone')

      // The SQL write changes title (done is set to what it already is: not a change).
      await e.db.exec(`UPDATE todos SET title = 'from sql', done = false WHERE uid = '${uid}'`)
      const meta = (await metaOf(e.db.database, uid))!
      expect(meta.clocks.title).toMatch(/-sql$/)
      expect(meta.clocks.title! > offline).toBe(true)
      expect(meta.clocks.priority).toBe(created)
      expect(meta.clocks.done).toBe(created)
      await until(
        () => live.records.get(uid)?.record.title === 'from sql',
        'the live client to see the SQL title',
      )

      await phone.online()
      const older = await push(phone, 'phone', [
        {
          id: 'u1',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'offline title', priority: 5 },
          clock: offline,
        },
      ])
      expect(older.outcomes[0]!.status).toBe('applied')
      // The other field survives; the same field loses to the newer SQL write.
      expect(await storedRow(e, uid)).toMatchObject({ title: 'from sql', priority: 5 })
      await until(() => live.records.get(uid)?.record.priority === 5, 'the live client to see priority 5')
      expect(live.records.get(uid)!.record.title).toBe('from sql')

      // An edit made after the SQL write wins.
      const later = clientClock(Date.now() + 2 * SECOND, 'phone')
      await push(phone, 'phone', [
        { id: 'u2', model: 'todos', uid, op: 'update', patch: { title: 'later title' }, clock: later },
      ])
      expect((await storedRow(e, uid))!.title).toBe('later title')
      // A later SQL write of another column leaves the title's clock alone.
      await e.db.exec(`UPDATE todos SET done = true WHERE uid = '${uid}'`)
      const after = (await metaOf(e.db.database, uid))!
      expect(after.clocks.title).toBe(later)
      expect(after.clocks.done).toMatch(/-sql$/)
      // ...and its clock is past every clock the record held (here the future `later` one).
      expect(after.clocks.done! > later).toBe(true)
      const truth = await converges(live, server, 'the live client to converge')
      expect(truth[uid]).toMatchObject({ title: 'later title', priority: 5, done: true })
      await phone.pull()
      expect(phone.state()).toEqual(truth)
    })

    it('an external DELETE is a tombstone that a stale client does not resurrect', async () => {
      const e = env()
      const server = await e.start()
      const uid = uuidv7()
      const live = await e.open(server)
      const stale = await e.open(server, 'admin', { live: false })
      await push(stale, 'stale', [
        {
          id: 'c1',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'doomed' },
          clock: clientClock(Date.now() - 120 * SECOND, 'stale'),
        },
      ])
      await stale.pull()
      stale.offline()
      await until(() => live.records.has(uid), 'the live client to get the record')

      await e.db.exec(`DELETE FROM todos WHERE uid = '${uid}'`)
      await until(() => !live.records.has(uid), 'the live client to drop the record')
      const tomb = (await metaOf(e.db.database, uid))!
      expect(tomb.deleted_at).not.toBeNull()
      expect(tomb.deleted_clock).toMatch(/-sql$/)

      // The stale client comes back and pushes what it did offline, before the delete.
      const pages = await stale.online()
      expect(pages.flatMap((p) => p.deletes.map((d) => d.uid))).toEqual([uid])
      const offline = clientClock(Date.now() - 60 * SECOND, 'stale')
      const outcomes = await push(stale, 'stale', [
        { id: 'u1', model: 'todos', uid, op: 'update', patch: { title: 'still here?' }, clock: offline },
        { id: 'i1', model: 'todos', uid, op: 'increment', deltas: { likes: 1 }, clock: offline },
        {
          id: 'c2',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'again?' },
          clock: offline,
        },
      ])
      for (const outcome of outcomes.outcomes) expect(outcome.status).not.toBe('rejected')
      expect(await storedRow(e, uid)).toBeUndefined()
      expect((await metaOf(e.db.database, uid))!.deleted_at).not.toBeNull()
      await stale.pull()
      expect(stale.records.has(uid)).toBe(false)
      // A create made after the delete (a newer clock) brings it back, as for any tombstone.
      await push(stale, 'stale', [
        {
          id: 'c3',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'reborn' },
          clock: clientClock(Date.now() + 2 * SECOND, 'stale'),
        },
      ])
      await until(
        () => live.records.get(uid)?.record.title === 'reborn',
        'the live client to get the new record',
      )
      const truth = await converges(live, server, 'the live client to converge')
      await stale.pull()
      expect(stale.state()).toEqual(truth)
    })
  })

  describe('change capture: scope', () => {
    it('a captured row outside a user scope never reaches that user, live or by pull', async () => {
      const e = env()
      const server = await e.start()
      const alice = await e.open(server, 'alice')
      const bob = await e.open(server, 'bob')
      const admin = await e.open(server, 'admin')
      const aliceBack = await e.open(server, 'alice', { live: false })
      aliceBack.offline()
      const [mine, bobs, moving] = [uuidv7(), uuidv7(), uuidv7()]
      await e.db.exec(
        `INSERT INTO todos (uid, owner_id, title) VALUES
          ('${bobs}', 'bob', 'bob secret'), ('${mine}', 'alice', 'alice own'), ('${moving}', 'alice', 'moving')`,
      )
      await e.db.exec(`UPDATE todos SET title = 'bob secret 2' WHERE uid = '${bobs}'`)
      await converges(bob, server, 'Bob to get his record')
      await converges(admin, server, 'the admin to get every record')
      await converges(alice, server, 'Alice to get hers')
      expect(Object.keys(alice.state()).sort()).toEqual([mine, moving].sort())
      expect(Object.keys(bob.state())).toEqual([bobs])

      // A record leaving Alice's scope is evicted from her clients, and reaches Bob's.
      await e.db.exec(`UPDATE todos SET owner_id = 'bob' WHERE uid = '${moving}'`)
      await until(() => !alice.records.has(moving), 'Alice to lose the record that left her scope')
      expect(alice.pushes.flatMap((p) => p.evictions)).toContain(moving)
      await until(() => bob.records.has(moving), 'Bob to get the record that entered his scope')
      // A write of Alice's record after it: a barrier for anything of Bob's that could reach her.
      await e.db.exec(`UPDATE todos SET title = 'barrier' WHERE uid = '${mine}'`)
      await until(() => alice.records.get(mine)?.record.title === 'barrier', 'the barrier')
      await e.db.exec(`DELETE FROM todos WHERE uid = '${bobs}'`)
      await until(() => !bob.records.has(bobs), 'Bob to lose his deleted record')
      await e.db.exec(`UPDATE todos SET title = 'barrier 2' WHERE uid = '${mine}'`)
      await until(() => alice.records.get(mine)?.record.title === 'barrier 2', 'the second barrier')
      expect(JSON.stringify(alice.pushes)).not.toContain(bobs)
      expect(JSON.stringify(alice.pushes)).not.toContain('bob secret')

      const pages = await aliceBack.online()
      expect(aliceBack.state()).toEqual(await databaseState(server, { userId: 'alice' }))
      expect(Object.keys(aliceBack.state())).toEqual([mine])
      // Bob's records are never named to Alice, not even as a tombstone or an eviction.
      expect(JSON.stringify(pages)).not.toContain(bobs)
      expect(JSON.stringify(pages)).not.toContain('bob secret')
      await converges(bob, server, 'Bob to converge')
    })
  })

  describe('change capture: nothing is logged twice', () => {
    it("a write through tidesync's services is logged once, by tidesync (not captured)", async () => {
      const e = env()
      const server = await e.start()
      const client = await e.open(server)
      const created = await client.request<{ record: { uid: string } }>('service', {
        model: 'todos',
        method: 'create',
        args: { data: { ownerId: 'alice', title: 'service' } },
      })
      const uid = created.record.uid
      await client.request('service', {
        model: 'todos',
        method: 'update',
        args: { uid, patch: { title: 'renamed' } },
      })
      const clock = () => clientClock(Date.now(), 'c')
      await push(client, 'c', [
        { id: '1', model: 'todos', uid, op: 'update', patch: { priority: 2 }, clock: clock() },
        { id: '2', model: 'todos', uid, op: 'increment', deltas: { likes: 1 }, clock: clock() },
      ])
      await client.request('service', { model: 'todos', method: 'delete', args: { uid } })
      const log = await changesOf(e.db.database, uid)
      expect(log.map((c) => [c.op, c.captured])).toEqual([
        ['upsert', false],
        ['upsert', false],
        ['upsert', false],
        ['upsert', false],
        ['delete', false],
      ])
      // The live client saw each once, the last as a tombstone.
      await until(() => client.pushes.some((p) => p.deletes.some((d) => d.uid === uid)), 'the tombstone')
      expect(client.records.has(uid)).toBe(false)
    })

    it("a write-buffer flush of tidesync's writes is logged but keeps the fields' clocks", async () => {
      const e = env()
      const server = await e.start({ writeBuffer: true, todos: { buffered: true } })
      const live = await e.open(server)
      const uid = uuidv7()
      const createdAt = clientClock(Date.now() - 10 * SECOND, 'c')
      const renamedAt = clientClock(Date.now() - 5 * SECOND, 'c')
      await push(live, 'c', [
        {
          id: '1',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'buffered' },
          clock: createdAt,
        },
      ])
      await server.buffer!.flush()
      await push(live, 'c', [
        { id: '2', model: 'todos', uid, op: 'update', patch: { title: 'renamed' }, clock: renamedAt },
        { id: '3', model: 'todos', uid, op: 'increment', deltas: { likes: 2 }, clock: renamedAt },
      ])
      const before = (await metaOf(e.db.database, uid))!
      expect(before.clocks.title).toBe(renamedAt)
      const logBefore = await changesOf(e.db.database, uid)
      expect(logBefore.every((c) => !c.captured)).toBe(true)
      expect(await storedRow(e, uid)).toMatchObject({ title: 'buffered', likes: 0 })

      await server.buffer!.flush()
      expect(await storedRow(e, uid)).toMatchObject({ title: 'renamed', likes: 2 })
      const after = (await metaOf(e.db.database, uid))!
      // Logged (so clients learn of it), but the flush is no new edit: the clocks stay.
      expect(after.clocks).toEqual(before.clocks)
      expect(after.rev).toBeGreaterThan(before.rev)
      const logAfter = await changesOf(e.db.database, uid)
      expect(logAfter.slice(0, logBefore.length)).toEqual(logBefore)
      expect(logAfter.slice(logBefore.length).map((c) => [c.op, c.captured])).toEqual([['upsert', true]])
      const truth = await converges(live, server, 'the live client to converge')
      expect(truth[uid]).toMatchObject({ title: 'renamed', likes: 2 })
      // An offline edit older than the rename still loses: the flush did not make the title newer.
      await push(live, 'other', [
        {
          id: '4',
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: 'older' },
          clock: clientClock(Date.now() - 7 * SECOND, 'other'),
        },
      ])
      await server.buffer!.flush()
      expect((await storedRow(e, uid))!.title).toBe('renamed')
    })
  })
}
