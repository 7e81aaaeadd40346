import type { MemoryIpc } from '@tidesync/ipc'
import type pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, PushResult } from '../../protocol.js'
import {
  allPublished,
  converges,
  databaseState,
  metaOf,
  type SyncClient,
  until,
} from '../fixtures/capture-env.js'
import { clientClock } from '../fixtures/clock.js'
import type { CaptureEnv } from './capture-env.js'

/** A small seeded PRNG (mulberry32): the same choices each run. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Records whose metadata and row disagree: a live record without a row, or a row with a tombstone. */
async function ghosts(env: CaptureEnv): Promise<unknown[]> {
  return env.db.rows(`
    SELECT m.uid, m.deleted_at, t.uid AS row FROM tidesync_meta m
    FULL JOIN todos t ON t.uid::text = m.uid AND m.model = 'todos'
    WHERE (m.deleted_at IS NULL) IS DISTINCT FROM (t.uid IS NOT NULL)`)
}

/** Waits until a statement of this database waits on a lock (the service blocked on the SQL writer). */
async function someoneWaits(env: CaptureEnv): Promise<void> {
  await until(
    async () =>
      (
        await env.db.rows(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )
      ).length > 0,
    'a statement to wait for the SQL transaction',
  )
}

/** A transaction that retries on deadlock / serialization failure (SQL writers racing each other). */
async function transaction(conn: pg.PoolClient, statements: string[]): Promise<boolean> {
  try {
    await conn.query('BEGIN')
    for (const statement of statements) await conn.query(statement)
    await conn.query('COMMIT')
    return true
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => undefined)
    const code = (error as { code?: string }).code
    if (code === '40P01' || code === '40001') return false
    throw error
  }
}

/**
 * A deferred trigger that sleeps at COMMIT, after capture's own commit step (deferred triggers
 * fire in the order their events were queued; a transaction inserts into `capture_slow` last):
 * commits that become visible late, after their revisions were given.
 */
async function slowCommits(env: CaptureEnv): Promise<void> {
  await env.db.exec(`CREATE TABLE IF NOT EXISTS capture_slow (ms int);
    CREATE OR REPLACE FUNCTION capture_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(NEW.ms / 1000.0); RETURN NULL; END $$;
    DROP TRIGGER IF EXISTS capture_slow ON capture_slow;
    CREATE CONSTRAINT TRIGGER capture_slow AFTER INSERT ON capture_slow
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION capture_slow();`)
  env.defer(() => env.db.exec('DROP TABLE IF EXISTS capture_slow; DROP FUNCTION IF EXISTS capture_slow()'))
}

/** Pushes as a client's outbox does: again (the same changes) while the error is retryable. */
async function push(client: SyncClient, clientId: string, changes: Change[]): Promise<PushResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.request<PushResult>('sync:push', { clientId, changes })
    } catch (error) {
      // A deadlock with an SQL writer (they lock rows in another order) is retryable.
      if (!(error as { retryable?: boolean }).retryable || attempt >= 10) throw error
    }
  }
}

/**
 * PostgreSQL only: services and SQL writers on the same rows at once, with several connections.
 */
export function captureConcurrencyContract(env: () => CaptureEnv): void {
  describe('change capture: services and SQL writers at once (PostgreSQL)', () => {
    it('a service update racing an SQL DELETE of the same record neither resurrects it nor loses the tombstone', async () => {
      const e = env()
      const server = await e.start()
      const uid = uuidv7()
      await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'start')`)
      const conn = await e.db.connection()
      e.defer(() => conn.release())
      await conn.query('BEGIN')
      await conn.query(`DELETE FROM todos WHERE uid = '${uid}'`)
      // The service reads the record (still there for it) and blocks on the row the DELETE holds.
      const update = server.tidesync.services.todos!.update({ uid, patch: { priority: 5 } }, {}).then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      )
      await someoneWaits(e)
      await conn.query('COMMIT')
      const outcome = await update
      // Whatever it answers (NOT_FOUND, or the tombstone), it must not claim a record that is not there.
      if ('result' in outcome) expect(outcome.result).not.toHaveProperty('record')
      expect(await e.db.rows(`SELECT uid FROM todos WHERE uid = '${uid}'`)).toEqual([])
      const meta = (await metaOf(e.db.database, uid))!
      expect(meta.deleted_at).not.toBeNull()
      expect(meta.deleted_clock).toMatch(/-sql$/)
      expect(await ghosts(e)).toEqual([])
      // A stale create (an old clock) does not bring the SQL-deleted record back.
      await server.tidesync.push(
        {
          clientId: 'stale',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'create',
              data: { ownerId: 'alice', title: 'stale' },
              clock: clientClock(Date.UTC(2001, 0, 1), 'stale'),
            },
          ],
        },
        {},
      )
      expect(await e.db.rows(`SELECT uid FROM todos WHERE uid = '${uid}'`)).toEqual([])
    })

    it("a service update racing an SQL UPDATE of another column keeps the SQL write's clock", async () => {
      const e = env()
      const server = await e.start()
      const uid = uuidv7()
      await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'start')`)
      const inserted = (await metaOf(e.db.database, uid))!.clocks.title!
      const conn = await e.db.connection()
      e.defer(() => conn.release())
      await conn.query('BEGIN')
      await conn.query(`UPDATE todos SET title = 'from sql' WHERE uid = '${uid}'`)
      const update = server.tidesync.services.todos!.update({ uid, patch: { priority: 5 } }, {})
      await someoneWaits(e)
      await conn.query('COMMIT')
      await update
      expect(await e.db.rows(`SELECT title, priority FROM todos WHERE uid = '${uid}'`)).toEqual([
        { title: 'from sql', priority: 5 },
      ])
      const meta = (await metaOf(e.db.database, uid))!
      // The title was written by SQL after the insert: its clock is the SQL update's, not the insert's.
      expect(meta.clocks.title).not.toBe(inserted)
      // So an offline edit made between the insert and the SQL update loses on the title.
      const between = clientClock(Date.parse(inserted.slice(0, 24)) + 1, 'phone')
      await server.tidesync.push(
        {
          clientId: 'phone',
          changes: [
            { id: '1', model: 'todos', uid, op: 'update', patch: { title: 'older edit' }, clock: between },
          ],
        },
        {},
      )
      expect(await e.db.rows(`SELECT title FROM todos WHERE uid = '${uid}'`)).toEqual([{ title: 'from sql' }])
    })

    it("a service update racing the first captured write of a record without metadata keeps that write's clock", async () => {
      const e = env()
      const server = await e.start()
      const uid = uuidv7()
      // A row from before tidesync: written with capture off, so it has no metadata yet.
      await e.db.exec(`BEGIN; SELECT set_config('tidesync.capture', 'off', true);
        INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'legacy'); COMMIT;`)
      expect(await metaOf(e.db.database, uid)).toBeUndefined()
      const conn = await e.db.connection()
      e.defer(() => conn.release())
      await conn.query('BEGIN')
      await conn.query(`UPDATE todos SET title = 'from sql' WHERE uid = '${uid}'`)
      // The service waits on the row; the SQL commit creates the record's metadata meanwhile.
      const update = server.tidesync.services.todos!.update({ uid, patch: { priority: 5 } }, {})
      await someoneWaits(e)
      await conn.query('COMMIT')
      await update
      const meta = (await metaOf(e.db.database, uid))!
      expect(meta.clocks.title).toMatch(/-sql$/)
      // An offline edit older than the SQL write loses on the title: the clock was not dropped.
      await server.tidesync.push(
        {
          clientId: 'phone',
          changes: [
            {
              id: '1',
              model: 'todos',
              uid,
              op: 'update',
              patch: { title: 'older edit' },
              clock: clientClock(Date.UTC(2001, 0, 1), 'phone'),
            },
          ],
        },
        {},
      )
      expect(await e.db.rows(`SELECT title, priority FROM todos WHERE uid = '${uid}'`)).toEqual([
        { title: 'from sql', priority: 5 },
      ])
    })

    it('SQL transactions writing two models in opposite orders commit without deadlocking on capture', async () => {
      const e = env()
      const server = await e.start({ notes: true })
      const writer = async (w: number) => {
        const conn = await e.db.connection()
        try {
          for (let i = 0; i < 15; i++) {
            const [todo, note] = [uuidv7(), uuidv7()]
            const writes = [
              `INSERT INTO todos (uid, owner_id, title) VALUES ('${todo}', 'alice', 'w${w}')`,
              `INSERT INTO capture_notes (uid, body) VALUES ('${note}', 'w${w}')`,
            ]
            // Half the writers write notes first: capture must not lock the models in write order.
            await conn.query('BEGIN')
            for (const statement of w % 2 === 0 ? writes : writes.reverse()) {
              await conn.query(statement)
              await conn.query('SELECT pg_sleep(0.002)')
            }
            await conn.query('COMMIT')
          }
        } finally {
          conn.release()
        }
      }
      await Promise.all([0, 1, 2, 3].map(writer))
      const counts = await e.db.rows<{ model: string; n: number }>(
        `SELECT model, count(*)::int AS n FROM tidesync_changes WHERE captured GROUP BY model ORDER BY model`,
      )
      expect(counts).toEqual([
        { model: 'notes', n: 60 },
        { model: 'todos', n: 60 },
      ])
      const pulled = await server.tidesync.pull({ model: 'notes', checkpoint: '0', limit: 1000 }, {})
      expect(pulled.upserts).toHaveLength(60)
    })

    it('pushes and SQL transactions on the same rows: every client converges to the database, no commit is skipped', async () => {
      const e = env()
      const a = await e.start()
      const b = await e.start({ ipc: (e.ipc as MemoryIpc).createPeer() })
      await slowCommits(e)
      const rand = random(15)
      const seeded = Array.from({ length: 12 }, () => uuidv7())
      await e.db.exec(
        `INSERT INTO todos (uid, owner_id, title, priority) VALUES ${seeded
          .map((u, i) => `('${u}', 'alice', 'seed ${i}', ${i})`)
          .join(', ')}`,
      )
      await allPublished(e.db)
      const liveA = await e.open(a)
      const liveB = await e.open(b)
      const aliceB = await e.open(b, 'alice')
      const puller = await e.open(a, 'admin', { live: false })
      const pusherA = await e.open(a, 'admin', { live: false })
      const pusherB = await e.open(b, 'admin', { live: false })
      const pick = () => seeded[Math.floor(rand() * seeded.length)]!
      /** Records inserted by SQL and never updated: a skipped commit would show as a missing record. */
      const inserted: string[] = []
      /** Committed counter increments of each seeded record (seeded records are never deleted). */
      const likes = new Map<string, number>(seeded.map((uid) => [uid, 0]))

      const sqlWriter = async (w: number) => {
        const conn = await e.db.connection()
        try {
          for (let i = 0; i < 10; i++) {
            const rows = [...new Set([pick(), pick()])].sort()
            const fresh = uuidv7()
            const statements = rows.map(
              (uid) =>
                `UPDATE todos SET title = 'sql ${w}.${i}', likes = likes + 1, priority = ${Math.floor(rand() * 10)},
                   owner_id = '${rand() < 0.15 ? 'bob' : 'alice'}' WHERE uid = '${uid}'`,
            )
            statements.push(
              `INSERT INTO todos (uid, owner_id, title) VALUES ('${fresh}', 'alice', 'insert ${w}.${i}')`,
            )
            const doomed =
              inserted.length > 0 && rand() < 0.3 ? inserted[Math.floor(rand() * inserted.length)] : undefined
            if (doomed) statements.push(`DELETE FROM todos WHERE uid = '${doomed}'`)
            // Slow before COMMIT (holding the rows) and slow inside it, after capture gave the
            // transaction its revisions: others take later revisions and pullers read meanwhile.
            statements.push(`SELECT pg_sleep(${(rand() * 0.02).toFixed(3)})`)
            statements.push(`INSERT INTO capture_slow VALUES (${Math.floor(rand() * 20)})`)
            if (await transaction(conn, statements)) {
              inserted.push(fresh)
              for (const uid of rows) likes.set(uid, likes.get(uid)! + 1)
            }
          }
        } finally {
          conn.release()
        }
      }
      const pusher = async (client: SyncClient, name: string) => {
        for (let i = 0; i < 15; i++) {
          const changes: Change[] = []
          for (let j = 0; j < 1 + Math.floor(rand() * 3); j++) {
            const uid = pick()
            const clock = clientClock(Date.now() + Math.floor(rand() * 200) - 100, name)
            const id = `${name}-${i}-${j}`
            changes.push(
              rand() < 0.5
                ? { id, model: 'todos', uid, op: 'increment', deltas: { likes: 10 }, clock }
                : {
                    id,
                    model: 'todos',
                    uid,
                    op: 'update',
                    patch: { title: `${name} ${i}`, done: rand() < 0.5 },
                    clock,
                  },
            )
          }
          const result = await push(client, name, changes)
          result.outcomes.forEach((outcome, k) => {
            const change = changes[k]!
            expect(outcome.status).toBe('applied')
            if (change.op === 'increment') likes.set(change.uid, likes.get(change.uid)! + 10)
          })
        }
      }
      let writing = true
      let pulls = 0
      const pulling = (async () => {
        while (writing) {
          await puller.pull(50)
          pulls++
        }
      })()
      try {
        await Promise.all([...[0, 1, 2, 3].map(sqlWriter), pusher(pusherA, 'pa'), pusher(pusherB, 'pb')])
      } finally {
        writing = false
        await pulling
      }
      expect(pulls).toBeGreaterThan(3)
      expect(inserted.length).toBeGreaterThan(20)

      await puller.pull()
      const truth = await databaseState(a)
      for (const uid of inserted) expect(puller.records.has(uid) || !(uid in truth)).toBe(true)
      expect(puller.state()).toEqual(truth)
      await converges(liveA, a, 'the live client on A to converge')
      await converges(liveB, b, 'the live client on B to converge')
      await converges(aliceB, b, "Alice's scoped client to converge")
      expect(Object.values(aliceB.state()).every((r) => r.ownerId === 'alice')).toBe(true)
      const fresh = await e.open(b, 'admin', { live: false })
      expect(fresh.state()).toEqual(truth)
      expect(await ghosts(e)).toEqual([])
      // Counters: every committed SQL +1 and every applied pushed +10 is in the table, once.
      expect(Object.fromEntries(seeded.map((uid) => [uid, truth[uid]!.likes]))).toEqual(
        Object.fromEntries(likes),
      )
    })
  })
}
