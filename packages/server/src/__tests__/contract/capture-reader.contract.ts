import { createIpc, type Ipc, type MemoryIpc } from '@tidesync/ipc'
import { redisUrl, uniqueId } from '@tidesync/test-env'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { channelFor } from '../../live/messages.js'
import { allPublished, converges, FAST_CAPTURE, until } from '../fixtures/capture-env.js'
import type { CaptureEnv } from './capture-env.js'

/** The capture reader's cursor of `todos` and the newest captured revision. */
async function cursorAndLast(env: CaptureEnv): Promise<{ cursor: number; last: number }> {
  const [row] = await env.db.rows<{ cursor: string | null; last: string | null }>(`
    SELECT (SELECT value::text FROM tidesync_state WHERE key = 'captured:todos') AS cursor,
           (SELECT max(rev)::text FROM tidesync_changes WHERE model = 'todos' AND captured) AS last`)
  return { cursor: Number(row?.cursor ?? 0), last: Number(row?.last ?? 0) }
}

/** Two IPC instances of one deployment: memory peers, or two Redis connections. */
async function ipcPair(env: CaptureEnv, driver: 'memory' | 'redis'): Promise<[Ipc, Ipc]> {
  if (driver === 'memory') return [env.ipc, (env.ipc as MemoryIpc).createPeer()]
  const keyPrefix = `${uniqueId('capture')}:`
  const pair = [
    await createIpc({ driver: 'redis', url: redisUrl, keyPrefix }),
    await createIpc({ driver: 'redis', url: redisUrl, keyPrefix }),
  ] as [Ipc, Ipc]
  env.defer(async () => {
    const keys = await pair[0].keys('')
    if (keys.length > 0) await pair[0].del(...keys)
    await Promise.all(pair.map((ipc) => ipc.close()))
  })
  return pair
}

/** The server that reads captured changes, its failover and its catch-up. */
export function captureReaderContract(env: () => CaptureEnv, options: { redis: boolean }): void {
  describe('change capture: the reader', () => {
    for (const driver of options.redis ? (['memory', 'redis'] as const) : (['memory'] as const)) {
      it(`one server reads; another takes over when it stops (${driver} IPC)`, async () => {
        const e = env()
        const [ipcA, ipcB] = await ipcPair(e, driver)
        const a = await e.start({ ipc: ipcA })
        const b = await e.start({ ipc: ipcB })
        const onB = await e.open(b)
        const messages: unknown[] = []
        const unsubscribe = await ipcB.subscribe(channelFor(b.tidesync.core.keyPrefix, 'todos'), (m) => {
          messages.push(m)
        })
        e.defer(unsubscribe)
        const [x, y] = [uuidv7(), uuidv7()]
        await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${x}', 'alice', 'x')`)
        await until(() => onB.records.has(x), 'the client on B to get x')
        await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${y}', 'alice', 'y')`)
        await until(() => onB.records.has(y), 'the client on B to get y')
        // Two commits, two live messages: one server read them, not both.
        expect(messages).toHaveLength(2)

        await a.close()
        await e.db.exec(`UPDATE todos SET title = 'after the reader stopped' WHERE uid = '${x}'`)
        await until(
          () => onB.records.get(x)?.record.title === 'after the reader stopped',
          'B to take over and publish',
          3 * FAST_CAPTURE.leaseSeconds * 1000 + 5000,
        )
        await converges(onB, b, 'the client on B to converge')
      })
    }

    it('a deployment that was down while SQL wrote catches up from the stored cursor when it starts', async () => {
      const e = env()
      // A server that never reads (capture off) keeps its client subscribed throughout.
      const observer = await e.start({ capture: false })
      const watcher = await e.open(observer)
      const reader = await e.start()
      const [before, deleted, fresh, changed] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()]
      await e.db.exec(
        `INSERT INTO todos (uid, owner_id, title) VALUES ('${before}', 'alice', 'before'), ('${deleted}', 'alice', 'doomed')`,
      )
      await until(() => watcher.records.has(before) && watcher.records.has(deleted), 'the first writes')
      const offline = await e.open(observer, 'admin', { live: false })
      offline.offline()
      await reader.close()
      const stored = await cursorAndLast(e)
      expect(stored.cursor).toBe(stored.last)

      // No reader at all while these commit.
      await e.db.exec(`BEGIN;
        INSERT INTO todos (uid, owner_id, title) VALUES ('${fresh}', 'alice', 'while down'), ('${changed}', 'alice', 'v1');
        DELETE FROM todos WHERE uid = '${deleted}';
        COMMIT;`)
      await e.db.exec(`UPDATE todos SET title = 'v2' WHERE uid = '${changed}'`)
      const seenBefore = watcher.pushes.length

      await e.start()
      await converges(watcher, observer, 'the subscribed client to get what was written while down')
      expect(watcher.records.has(deleted)).toBe(false)
      expect(watcher.records.get(changed)!.record.title).toBe('v2')
      // Published from the stored cursor: only what was written while down.
      const named = watcher.pushes
        .slice(seenBefore)
        .flatMap((p) => [...p.upserts.map((u) => u.record.uid), ...p.deletes.map((d) => d.uid)])
      expect(new Set(named)).toEqual(new Set([fresh, changed, deleted]))
      await allPublished(e.db)
      await offline.online()
      expect(offline.state()).toEqual(watcher.state())
    })

    it('a client that loaded a record before its capture was published still gets its later delete live', async () => {
      const e = env()
      const observer = await e.start({ capture: false })
      const [inserted, moved] = [uuidv7(), uuidv7()]
      // No reader runs: these are captured, not yet published.
      await e.db.exec(
        `INSERT INTO todos (uid, owner_id, title) VALUES ('${inserted}', 'alice', 'a'), ('${moved}', 'alice', 'b')`,
      )
      // The clients load them by a full sync (which reads the table), then subscribe.
      const admin = await e.open(observer)
      const alice = await e.open(observer, 'alice')
      expect(admin.records.has(inserted) && alice.records.has(moved)).toBe(true)
      await e.db.exec(`DELETE FROM todos WHERE uid = '${inserted}'`)
      await e.db.exec(`UPDATE todos SET owner_id = 'bob' WHERE uid = '${moved}'`)
      // A reader starts and publishes the four captured changes.
      await e.start()
      await converges(admin, observer, 'the client to drop the deleted record')
      await converges(alice, observer, 'Alice to drop the deleted record and the one that left her scope')
    })

    it('reads in pages: a statement writing more rows than a page reaches clients whole', async () => {
      const e = env()
      const server = await e.start({ capture: { ...FAST_CAPTURE, pageSize: 3 } })
      const live = await e.open(server)
      await e.db.exec(
        `INSERT INTO todos (uid, owner_id, title, priority) SELECT gen_random_uuid(), 'alice', 'bulk', n FROM generate_series(1, 20) n`,
      )
      await e.db.exec(`UPDATE todos SET title = 'bulk updated' WHERE priority > 10`)
      const truth = await converges(live, server, 'the live client to get all 20 rows')
      expect(Object.values(truth).filter((r) => r.title === 'bulk updated')).toHaveLength(10)
    })

    it('a lost LISTEN connection is taken again and nothing is missed (PostgreSQL)', async (ctx) => {
      const e = env()
      if (e.db.kind !== 'postgres') return ctx.skip()
      const server = await e.start()
      const live = await e.open(server)
      const uid = uuidv7()
      await e.db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${uid}', 'alice', 'before')`)
      await until(() => live.records.has(uid), 'the first write')
      const killed = await e.db.rows<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
      )
      expect(killed.map((k) => k.ok)).toEqual([true])
      // Written while the reader has no LISTEN connection (it reconnects within 100 ms).
      await e.db.exec(`UPDATE todos SET title = 'after the connection dropped' WHERE uid = '${uid}'`)
      await until(
        () => live.records.get(uid)?.record.title === 'after the connection dropped',
        'the write after',
      )
      await until(
        async () =>
          (
            await e.db.rows(
              `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
            )
          ).length === 1,
        'the LISTEN connection to be back',
      )
      await e.db.exec(`UPDATE todos SET title = 'later' WHERE uid = '${uid}'`)
      await until(
        () => live.records.get(uid)?.record.title === 'later',
        'a notified write after the reconnect',
      )
    })
  })
}
