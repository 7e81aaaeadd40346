import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { PullResult, WireRecord } from '../../protocol.js'
import { allPublished, changesOf, converges, until } from '../fixtures/capture-env.js'
import { todos } from '../fixtures/schema.js'
import type { CaptureEnv } from './capture-env.js'

/** Three rows inserted by plain SQL (captured and published too), Alice's. A server must run. */
async function seed(env: CaptureEnv): Promise<[string, string, string]> {
  const uids = [uuidv7(), uuidv7(), uuidv7()] as [string, string, string]
  await env.db.exec(
    `INSERT INTO todos (uid, owner_id, title, priority, tags, due_at) VALUES
      ('${uids[0]}', 'alice', 'one', 1, '["a"]', '2030-01-01T00:00:00.000Z'),
      ('${uids[1]}', 'alice', 'two', 2, NULL, NULL),
      ('${uids[2]}', 'alice', 'three', 3, '{"k": [1, 2]}', NULL)`,
  )
  // Published before the clients load them (see "a client that loaded a record before its
  // capture was published" in the reader contract for the case where they are not).
  await allPublished(env.db)
  return uids
}

const deletedIn = (pages: Array<Pick<PullResult, 'deletes'>>) =>
  pages.flatMap((p) => p.deletes.map((d) => d.uid))

interface WriteCase {
  name: string
  /** Writes by plain SQL; returns what the test checks afterwards. */
  write(
    env: CaptureEnv,
    uids: [string, string, string],
  ): Promise<{
    present?: Record<string, Partial<WireRecord>>
    gone?: string[]
  }>
}

const WRITES: WriteCase[] = [
  {
    name: 'INSERT',
    async write(env) {
      const uid = uuidv7()
      await env.db.exec(
        `INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'inserted by sql')`,
      )
      return { present: { [uid]: { title: 'inserted by sql', likes: 0, done: false } } }
    },
  },
  {
    name: 'multi-row INSERT',
    async write(env) {
      const uids = [uuidv7(), uuidv7(), uuidv7()]
      await env.db.exec(
        `INSERT INTO todos (uid, owner_id, title, tags) VALUES ${uids
          .map((u, i) => `('${u}', 'alice', 'bulk ${i}', '[${i}]')`)
          .join(', ')}`,
      )
      return { present: Object.fromEntries(uids.map((u, i) => [u, { title: `bulk ${i}`, tags: [i] }])) }
    },
  },
  {
    name: 'UPDATE',
    async write(env, [a]) {
      await env.db.exec(
        `UPDATE todos SET title = 'updated by sql', due_at = '2031-02-03T04:05:06.789Z' WHERE uid = '${a}'`,
      )
      return { present: { [a]: { title: 'updated by sql', dueAt: '2031-02-03T04:05:06.789Z', tags: ['a'] } } }
    },
  },
  {
    name: 'multi-row UPDATE',
    async write(env, [a, b, c]) {
      await env.db.exec(`UPDATE todos SET done = true, priority = priority * 10 WHERE priority >= 2`)
      return {
        present: {
          [a]: { done: false, priority: 1 },
          [b]: { done: true, priority: 20 },
          [c]: { done: true, priority: 30 },
        },
      }
    },
  },
  {
    name: 'DELETE',
    async write(env, [, b]) {
      await env.db.exec(`DELETE FROM todos WHERE uid = '${b}'`)
      return { gone: [b] }
    },
  },
  {
    name: 'multi-row DELETE',
    async write(env, [a, , c]) {
      await env.db.exec(`DELETE FROM todos WHERE priority <> 2`)
      return { gone: [a, c] }
    },
  },
  {
    name: 'upsert (INSERT ... ON CONFLICT DO UPDATE)',
    async write(env, [a]) {
      const fresh = uuidv7()
      await env.db.exec(
        `INSERT INTO todos (uid, owner_id, title) VALUES ('${a}', 'alice', 'upserted'), ('${fresh}', 'alice', 'new by upsert')
         ON CONFLICT (uid) DO UPDATE SET title = excluded.title`,
      )
      return { present: { [a]: { title: 'upserted', priority: 1 }, [fresh]: { title: 'new by upsert' } } }
    },
  },
  {
    name: 'COPY',
    async write(env) {
      const uids = [uuidv7(), uuidv7()]
      await env.db.copyCsv(
        'todos (uid, owner_id, title, priority, tags)',
        `${uids[0]},alice,copied 0,7,"[""x""]"\n${uids[1]},alice,"copied, 1",8,\n`,
      )
      return {
        present: {
          [uids[0]!]: { title: 'copied 0', priority: 7, tags: ['x'] },
          [uids[1]!]: { title: 'copied, 1', tags: null },
        },
      }
    },
  },
  {
    name: 'TRUNCATE',
    async write(env, uids) {
      await env.db.exec('TRUNCATE todos')
      return { gone: [...uids] }
    },
  },
  {
    name: 'a multi-statement transaction',
    async write(env, [a, b]) {
      const fresh = uuidv7()
      await env.db.exec(`BEGIN;
        INSERT INTO todos (uid, owner_id, title) VALUES ('${fresh}', 'alice', 'first');
        UPDATE todos SET title = 'then renamed' WHERE uid = '${fresh}';
        UPDATE todos SET likes = likes + 5, title = 'tx' WHERE uid = '${a}';
        DELETE FROM todos WHERE uid = '${b}';
        COMMIT;`)
      return { present: { [fresh]: { title: 'then renamed' }, [a]: { title: 'tx', likes: 5 } }, gone: [b] }
    },
  },
]

/**
 * Change capture: writes made by plain SQL (not through tidesync's services) reach the
 * clients, live and by delta pull, merge per field with offline client edits, and respect scope.
 */
export function captureContract(env: () => CaptureEnv): void {
  describe('change capture: plain SQL writes reach clients', () => {
    for (const c of WRITES) {
      it(`${c.name} reaches a live client and a client that pulls from its old checkpoint`, async () => {
        const e = env()
        const server = await e.start()
        const uids = await seed(e)
        const live = await e.open(server)
        const back = await e.open(server, 'admin', { live: false })
        back.offline()
        const expected = await c.write(e, uids)

        const truth = await converges(live, server, `the live client to get the ${c.name}`)
        for (const [uid, fields] of Object.entries(expected.present ?? {}))
          expect(truth[uid]).toMatchObject(fields)
        for (const uid of expected.gone ?? []) expect(truth[uid]).toBeUndefined()
        // Everything in the log was captured (no service wrote): one entry per written row.
        const log = await e.db.rows<{ captured: boolean }>('SELECT captured FROM tidesync_changes')
        expect(log.length).toBeGreaterThan(3)
        expect(log.every((entry) => entry.captured)).toBe(true)
        const liveDeletes = deletedIn(live.pushes)
        for (const uid of expected.gone ?? []) expect(liveDeletes).toContain(uid)

        const pages = await back.online()
        expect(back.state()).toEqual(truth)
        // Deleted records come as tombstones (not just missing): the client drops them for good.
        expect(deletedIn(pages).sort()).toEqual([...(expected.gone ?? [])].sort())
        // The client is live again too.
        await e.db.exec(`UPDATE todos SET title = title || '!'`)
        await converges(back, server, 'the reconnected client to get live pushes again')
      })
    }

    it('a rolled-back transaction leaves nothing: no log entry, no push', async () => {
      const e = env()
      const server = await e.start()
      const [a] = await seed(e)
      const live = await e.open(server)
      const back = await e.open(server, 'admin', { live: false })
      back.offline()
      const ghost = uuidv7()
      const logged = async () =>
        (await e.db.rows<{ n: number }>('SELECT count(*)::int AS n FROM tidesync_changes'))[0]!.n
      const before = await logged()
      await e.db.exec(`BEGIN;
        INSERT INTO todos (uid, owner_id, title) VALUES ('${ghost}', 'alice', 'never');
        UPDATE todos SET title = 'never' WHERE uid = '${a}';
        ROLLBACK;`)
      expect(await logged()).toBe(before)
      // A committed write after it is a barrier: once it arrived, the rolled-back one would have.
      await e.db.exec(`UPDATE todos SET priority = 42 WHERE uid = '${a}'`)
      await until(() => live.records.get(a)?.record.priority === 42, 'the barrier')
      expect(JSON.stringify(live.pushes)).not.toContain('never')
      await back.online()
      expect(back.records.has(ghost)).toBe(false)
      expect(back.records.get(a)!.record).toMatchObject({ title: 'one', priority: 42 })
      expect(await logged()).toBe(before + 1)
    })

    it("the app's own write-buffer writes (outside tidesync) reach clients when the buffer flushes", async () => {
      const e = env()
      const server = await e.start({ writeBuffer: true })
      const [a, b] = await seed(e)
      const live = await e.open(server)
      const back = await e.open(server, 'admin', { live: false })
      back.offline()
      const buffer = server.buffer!
      const inserted = uuidv7()
      await buffer.table(todos).where(a).increment('likes', 5)
      await buffer.table(todos).where(b).update({ title: 'set through the buffer' })
      await buffer.table(todos).insert({ uid: inserted, ownerId: 'alice', title: 'queued insert' })
      await buffer.flush()
      const truth = await converges(live, server, 'the live client to get the flushed writes')
      expect(truth[a]).toMatchObject({ likes: 5 })
      expect(truth[b]).toMatchObject({ title: 'set through the buffer' })
      expect(truth[inserted]).toMatchObject({ title: 'queued insert' })
      await back.online()
      expect(back.state()).toEqual(truth)
    })

    it('a transaction writing two models is captured for both', async () => {
      const e = env()
      const server = await e.start({ notes: true })
      const [a] = await seed(e)
      const live = await e.open(server)
      const note = uuidv7()
      await e.db.exec(`BEGIN;
        INSERT INTO capture_notes (uid, body) VALUES ('${note}', 'a note');
        UPDATE todos SET title = 'with a note' WHERE uid = '${a}';
        COMMIT;`)
      await until(() => live.records.get(a)?.record.title === 'with a note', 'the todo change')
      const pulled = await server.tidesync.pull({ model: 'notes', checkpoint: '0' }, {})
      expect(pulled.upserts.map((u) => u.record)).toEqual([{ uid: note, body: 'a note' }])
      const revs = await e.db.rows<{ model: string; rev: string }>(
        `SELECT model, rev::text FROM tidesync_changes WHERE uid IN ('${a}', '${note}') AND captured ORDER BY rev`,
      )
      expect(
        revs
          .map((r) => r.model)
          .slice(-2)
          .sort(),
      ).toEqual(['notes', 'todos'])
    })

    it('an UPDATE that changes nothing synced is not logged', async () => {
      const e = env()
      await e.start()
      const [a] = await seed(e)
      const logged = async () => (await changesOf(e.db.database, a)).length
      const before = await logged()
      await e.db.exec(`UPDATE todos SET title = title WHERE uid = '${a}'`)
      expect(await logged()).toBe(before)
    })
  })
}
