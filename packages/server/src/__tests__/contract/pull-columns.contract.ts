import { and, eq, sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import type { Change, ColumnarRecords, PullResult, RecordWithMeta } from '../../protocol.js'
import { tidesyncTables } from '../../schema/metadata.js'
import { clientClock } from '../fixtures/clock.js'
import type { ContractEnv } from './env.js'
import { Replica, serverState } from './replica.js'

/** A columnar page decoded by hand, as PROTOCOL.md section 9 describes it (not the client's decoder). */
function decodeColumns(columnar: ColumnarRecords): RecordWithMeta[] {
  expect(columnar.rows).toHaveLength(columnar.meta.length)
  return columnar.rows.map((values, i) => {
    expect(values).toHaveLength(columnar.columns.length)
    const [created_at, updated_at, deleted_at, rev, clock] = columnar.meta[i]!
    expect(clock).toBeGreaterThanOrEqual(0)
    expect(clock).toBeLessThan(columnar.clocks.length)
    return {
      record: Object.fromEntries(columnar.columns.map((column, c) => [column, values[c]])) as never,
      meta: { created_at, updated_at, deleted_at, rev, clocks: columnar.clocks[clock]! },
    }
  })
}

/** A clock map as a string whatever its key order. */
const clockKey = (clocks: Record<string, string>) => JSON.stringify(Object.entries(clocks).sort())

/** A push of creates that all carry one client clock (an import: the records share their clocks). */
function batchCreates(count: number, wallMs: number, ownerId = 'u1'): Change[] {
  const clock = clientClock(wallMs, 'importer')
  return Array.from({ length: count }, (_, i) => ({
    id: uuidv7(),
    model: 'todos',
    uid: uuidv7(),
    op: 'create' as const,
    data: { ownerId, title: `import ${i}`, priority: i % 3, tags: i % 2 ? ['a', { b: i }] : null },
    clock,
  }))
}

/** Inserts rows directly (outside tidesync: no metadata row, no log entry). */
async function insertOutside(
  env: ContractEnv,
  rows: Array<{ title: string; dueAt: string | null; tags: unknown }>,
) {
  const uids: string[] = []
  for (const row of rows) {
    const uid = uuidv7()
    uids.push(uid)
    const tags = row.tags === null ? null : JSON.stringify(row.tags)
    await env.database.db.execute(
      sql`INSERT INTO todos (uid, owner_id, title, likes, due_at, tags)
          VALUES (${uid}, 'u1', ${row.title}, 7, ${row.dueAt}, ${tags}::jsonb)`,
    )
  }
  return uids
}

export function pullColumnsContract(env: () => ContractEnv): void {
  describe('sync:pull format columns', () => {
    it('carries the same records and metadata as format records, on snapshot and log pages', async () => {
      // The synthetic metadata of records written outside tidesync is dated "now": both formats
      // of a page are read at one frozen instant.
      let frozen: number | undefined
      const t = env().create({ now: () => frozen ?? Date.now() })
      const s = t.services.todos!
      const start = Date.now()
      await t.push({ clientId: 'importer', changes: batchCreates(9, start - 60_000) }, {})
      for (let i = 0; i < 4; i++) {
        await s.create(
          { data: { ownerId: 'u1', title: `single ${i} ✓`, dueAt: new Date(start + i).toISOString() } },
          {},
        )
      }
      const outside = await insertOutside(env(), [
        { title: 'outside dated', dueAt: '2024-02-29T12:34:56.789Z', tags: { nested: [1, 'two', null] } },
        { title: 'outside nulls', dueAt: null, tags: null },
        { title: 'outside array', dueAt: '1999-12-31T23:59:59.999Z', tags: ['x'] },
      ])
      await t.push(
        {
          clientId: 'counter',
          changes: [
            {
              id: uuidv7(),
              model: 'todos',
              uid: outside[0]!,
              op: 'increment',
              deltas: { likes: 3 },
              clock: clientClock(start, 'counter'),
            },
          ],
        },
        {},
      )

      const pullBoth = async (checkpoint: string, limit: number) => {
        frozen = Date.now()
        try {
          const records = await t.pull({ model: 'todos', checkpoint, limit }, {})
          const columns = await t.pull({ model: 'todos', checkpoint, limit, format: 'columns' }, {})
          return { records, columns }
        } finally {
          frozen = undefined
        }
      }
      const compare = ({ records, columns }: { records: PullResult; columns: PullResult }) => {
        expect(records.columns).toBeUndefined()
        expect(columns.upserts).toEqual([])
        const columnar = columns.columns!
        expect(decodeColumns(columnar)).toEqual(records.upserts)
        const { serverClock: _a, upserts: _b, ...recordsRest } = records
        const { serverClock: _c, upserts: _d, columns: _e, ...columnsRest } = columns
        expect(columnsRest).toEqual(recordsRest)
        // Each distinct clock map once.
        const keys = columnar.clocks.map(clockKey)
        expect(new Set(keys).size).toBe(keys.length)
        expect(columnar.clocks.length).toBeLessThanOrEqual(
          new Set(records.upserts.map((u) => clockKey(u.meta.clocks))).size,
        )
        return records
      }

      // The snapshot phase, in pages of 4.
      let checkpoint = '0'
      const seen: RecordWithMeta[] = []
      let snapshotPages = 0
      let changedMidLoad = false
      for (;;) {
        const page = compare(await pullBoth(checkpoint, 4))
        seen.push(...page.upserts)
        checkpoint = page.checkpoint
        snapshotPages++
        if (!changedMidLoad) {
          // Changes made during the load come from the log after the snapshot.
          changedMidLoad = true
          const [first, second, third] = (await s.findMany({}, {})).map((r) => r.record.uid)
          await s.update({ uid: first!, patch: { title: 'changed mid-load', dueAt: null } }, {})
          await s.delete({ uid: second! }, {})
          await t.push(
            {
              clientId: 'counter',
              changes: [
                {
                  id: uuidv7(),
                  model: 'todos',
                  uid: third!,
                  op: 'increment',
                  deltas: { likes: -2 },
                  clock: clientClock(Date.now(), 'counter'),
                },
              ],
            },
            {},
          )
          await s.create({ data: { ownerId: 'u1', title: 'created mid-load', tags: { k: 'v' } } }, {})
        }
        if (checkpoint.startsWith('r:')) break
      }
      expect(snapshotPages).toBeGreaterThanOrEqual(4)
      // Covered: records written outside tidesync (synthetic metadata, rev 0), a counter, dates,
      // json, nulls, and records sharing one clock map.
      const synthetic = seen.filter((u) => outside.includes(u.record.uid))
      expect(synthetic.map((u) => u.meta.rev).filter((rev) => rev === 0).length).toBeGreaterThanOrEqual(2)
      expect(synthetic.some((u) => u.record.dueAt === null && u.record.tags === null)).toBe(true)
      expect(seen.some((u) => u.record.likes === 10)).toBe(true)

      // The log phase, in pages of 2: updates, a delete (a tombstone beside the columns), a
      // counter change, a create.
      let logPages = 0
      let deletes = 0
      let hasMore = true
      while (hasMore) {
        const page = compare(await pullBoth(checkpoint, 2))
        deletes += page.deletes.length
        checkpoint = page.checkpoint
        hasMore = page.hasMore
        logPages++
      }
      expect(logPages).toBeGreaterThanOrEqual(2)
      expect(deletes).toBe(1)

      // An empty page: columns present and empty.
      const { columns } = await pullBoth(checkpoint, 2)
      expect(columns.columns).toMatchObject({ rows: [], meta: [], clocks: [] })
    })

    it("sends metadata timestamps as Date.toISOString gives them, whatever the session's time zone", async () => {
      // Snapshot pages read the metadata's timestamps as ISO text made by the database; the
      // push's answer and log pages format Dates. Both must give the same text, edge values too.
      const t = env().create()
      const { meta } = tidesyncTables
      const db = env().database.db
      try {
        const changes = batchCreates(4, Date.now() - 1000)
        const acked = await t.push({ clientId: 'importer', changes }, {})
        const edges: Array<[string, string, string | null]> = [
          ['0999-01-01T00:00:00.000Z', '2024-02-29T23:59:59.999Z', null],
          ['1970-01-01T00:00:00.000Z', '2038-01-19T03:14:08.001Z', null],
          ['2026-12-06T02:09:59.120Z', '2026-12-06T02:09:59.120Z', null],
        ]
        for (const [i, [created, updated]] of edges.entries()) {
          await db
            .update(meta)
            .set({ createdAt: new Date(created), updatedAt: new Date(updated) })
            .where(and(eq(meta.model, 'todos'), eq(meta.uid, changes[i]!.uid)))
        }
        const stored = await db.select().from(meta).where(eq(meta.model, 'todos'))
        const expected = new Map(
          stored.map((m) => [m.uid, [m.createdAt.toISOString(), m.updatedAt.toISOString(), null]]),
        )
        for (const [i, edge] of edges.entries()) expect(expected.get(changes[i]!.uid)).toEqual(edge)
        // From here on a zone of +05:45 (PGlite: its one connection; PostgreSQL: one of the
        // pool's). Set only now: in it PostgreSQL says year 999 with an offset of +05:41:16,
        // which no Date parses, so the reads above are made in UTC.
        await db.execute(sql`SET TIME ZONE 'Asia/Kathmandu'`)
        // The untouched record: the push's answer said the same.
        const untouched = acked.outcomes.find((o) => o.id === changes[3]!.id)!
        if (untouched.status !== 'applied') throw new Error(`push not applied: ${untouched.status}`)
        const answered = [untouched.meta.created_at, untouched.meta.updated_at, untouched.meta.deleted_at]
        expect(answered).toEqual(expected.get(changes[3]!.uid))

        const columns = await t.pull({ model: 'todos', checkpoint: '0', limit: 50, format: 'columns' }, {})
        const records = await t.pull({ model: 'todos', checkpoint: '0', limit: 50 }, {})
        const fromColumns = decodeColumns(columns.columns!)
        expect(fromColumns).toHaveLength(4)
        for (const { record, meta: m } of [...fromColumns, ...records.upserts]) {
          expect([m.created_at, m.updated_at, m.deleted_at]).toEqual(expected.get(record.uid))
        }
        const found = await t.services.todos!.findMany({}, {})
        for (const { record, meta: m } of found) {
          expect([m.created_at, m.updated_at, m.deleted_at]).toEqual(expected.get(record.uid))
        }
      } finally {
        await db.execute(sql`RESET TIME ZONE`)
      }
    })

    it('lists clocks shared by records once', async () => {
      const t = env().create()
      await t.push({ clientId: 'importer', changes: batchCreates(20, Date.now() - 1000) }, {})
      const page = await t.pull({ model: 'todos', checkpoint: '0', limit: 50, format: 'columns' }, {})
      const columnar = page.columns!
      expect(columnar.rows).toHaveLength(20)
      // One import, one clock: every record points at the same single clock map.
      expect(columnar.clocks).toHaveLength(1)
      expect(new Set(columnar.meta.map((m) => m[4]))).toEqual(new Set([0]))
      const records = await t.pull({ model: 'todos', checkpoint: '0', limit: 50 }, {})
      expect(new Set(records.upserts.map((u) => clockKey(u.meta.clocks))).size).toBe(1)
      expect(columnar.clocks[0]).toEqual(records.upserts[0]!.meta.clocks)
    })

    it('refuses a bad format with BAD_REQUEST naming format', async () => {
      const t = env().create()
      for (const format of ['csv', 'COLUMNS', 42, null, ['columns'], { columns: true }]) {
        const reply = await t.handle('sync:pull', { model: 'todos', checkpoint: '0', format }, {})
        expect(reply.error?.code).toBe('BAD_REQUEST')
        expect(reply.error?.message).toMatch(/^format:/)
      }
      const ok = await t.handle('sync:pull', { model: 'todos', checkpoint: '0', format: 'records' }, {})
      expect(ok.error).toBeUndefined()
    })
  })

  describe('sync:pull read-ahead', () => {
    /** Resolves once `count` snapshot reads (a select from todos with a limit) were sent. */
    const snapshotReads = (queries: string[]) =>
      queries.filter((q) => /from "todos"/i.test(q) && /limit/i.test(q) && !/count\(/i.test(q)).length

    it('a record changed or deleted after its page was read ahead reaches the client in its final state', async () => {
      const queries: string[] = []
      const logged = env().database.withQueryLog((q) => queries.push(q))
      // Pages of 10 asked for, and read ahead (the server's page size).
      const t = env().create({ db: logged, pageSize: 10 })
      await t.push({ clientId: 'importer', changes: batchCreates(30, Date.now() - 1000) }, {})
      const uids = (await t.services.todos!.findMany({}, {})).map((r) => r.record.uid).sort()
      // In page 2 (read ahead by page 1's answer) and page 3 (read once page 2 was read).
      const changed = [uids[12]!, uids[22]!]
      const deleted = [uids[15]!, uids[25]!]
      const titlesBefore = await Promise.all(
        changed.map(async (uid) => (await t.services.todos!.findUnique({ uid }, {}))!.record.title),
      )

      const replica = new Replica(t, undefined)
      queries.length = 0
      const first = await replica.pullPage(10)
      expect(first.hasMore).toBe(true)
      // The answer started reading pages 2 and 3: wait until both reads were sent and have surely finished.
      const deadline = Date.now() + 5000
      while (snapshotReads(queries) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      expect(snapshotReads(queries)).toBe(3)
      await env().database.db.execute(sql`SELECT 1`)
      await new Promise((r) => setTimeout(r, 250))

      for (const uid of changed) {
        await t.services.todos!.update({ uid, patch: { title: 'final title', priority: 9 } }, {})
      }
      for (const uid of deleted) await t.services.todos!.delete({ uid }, {})
      // Pages 2 and 3 were read ahead: they still show the records as they were.
      const ahead = new Map<string, Record<string, unknown>>()
      for (const page of [await replica.pullPage(10), await replica.pullPage(10)]) {
        for (const u of page.upserts) ahead.set(u.record.uid, u.record)
      }
      expect(changed.map((uid) => ahead.get(uid)?.title)).toEqual(titlesBefore)
      expect(deleted.every((uid) => ahead.has(uid))).toBe(true)

      await replica.pullAll(10)
      // The log phase brought the final states: the changes, and the deletes as tombstones.
      for (const uid of changed) {
        expect(replica.records.get(uid)?.record).toMatchObject({ title: 'final title', priority: 9 })
      }
      for (const uid of deleted) expect(replica.records.has(uid)).toBe(false)
      expect(replica.state()).toEqual(await serverState(t, undefined))
      expect(replica.records.size).toBe(28)
    })

    it('after a small first page, the next full page is the one read ahead; any smaller page is cut from it', async () => {
      const queries: string[] = []
      const logged = env().database.withQueryLog((q) => queries.push(q))
      const t = env().create({ db: logged, pageSize: 10 })
      await t.push({ clientId: 'importer', changes: batchCreates(40, Date.now() - 1000) }, {})
      const uids = (await t.services.todos!.findMany({}, {})).map((r) => r.record.uid).sort()
      const replica = new Replica(t, undefined)
      queries.length = 0
      // A first page of 3, as clients ask for: the server reads ahead full pages (its page size) after it.
      expect((await replica.pullPage(3)).upserts).toHaveLength(3)
      const deadline = Date.now() + 5000
      while (snapshotReads(queries) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      await new Promise((r) => setTimeout(r, 100))
      expect(snapshotReads(queries)).toBe(3)
      // The full page that follows is the one read ahead: no read of its own (only the page after
      // the next one is read ahead now).
      const second = await replica.pullPage(10)
      expect(second.upserts.map((u) => u.record.uid)).toEqual(uids.slice(3, 13))
      await new Promise((r) => setTimeout(r, 100))
      expect(snapshotReads(queries)).toBe(4)
      // A smaller page is cut from the page read ahead; the load stays complete and in order.
      const third = await replica.pullPage(4)
      expect(third.upserts.map((u) => u.record.uid)).toEqual(uids.slice(13, 17))
      await replica.pullAll(10)
      expect(replica.state()).toEqual(await serverState(t, undefined))
      expect(replica.records.size).toBe(40)
    })

    it('two clients loading the same subset at once each get a complete, correct load', async () => {
      const t = env().create()
      await t.push({ clientId: 'importer', changes: batchCreates(23, Date.now() - 1000) }, {})
      const a = new Replica(t, { ownerId: 'u1' })
      const b = new Replica(t, { ownerId: 'u1' })
      // Same start: same checkpoints, so both ask for the pages read ahead for either.
      const firstA = await a.pullPage(5)
      const firstB = await b.pullPage(5)
      expect(firstB.checkpoint).toBe(firstA.checkpoint)
      // Interleaved page by page, with changes in between.
      const uids = (await t.services.todos!.findMany({}, {})).map((r) => r.record.uid).sort()
      let round = 0
      for (;;) {
        const [pageA, pageB] = [await a.pullPage(5), await b.pullPage(5)]
        if (round === 0) {
          await t.services.todos!.update({ uid: uids[20]!, patch: { title: 'edited during loads' } }, {})
          await t.services.todos!.delete({ uid: uids[6]! }, {})
          await t.services.todos!.create({ data: { ownerId: 'u1', title: 'late' } }, {})
        }
        round++
        if (!pageA.hasMore && !pageB.hasMore) break
      }
      // And concurrently, two more clients at the same time.
      const c = new Replica(t, { ownerId: 'u1' })
      const d = new Replica(t, { ownerId: 'u1' })
      await Promise.all([c.pullAll(4), d.pullAll(4)])
      const expected = await serverState(t, { ownerId: 'u1' })
      expect(Object.keys(expected)).toHaveLength(23)
      for (const replica of [a, b, c, d]) expect(replica.state()).toEqual(expected)
    })

    it('a page read ahead for one scope never reaches another, even under the same checkpoint', async () => {
      const t = env().create()
      await t.push({ clientId: 'importer', changes: batchCreates(12, Date.now() - 1000, 'u1') }, {})
      await t.push({ clientId: 'importer', changes: batchCreates(12, Date.now() - 1000, 'u2') }, {})
      const one = new Replica(t, undefined, { userId: 'u1' })
      const first = await one.pullPage(3)
      await new Promise((r) => setTimeout(r, 50))
      // Another user presents u1's checkpoint (checkpoints are opaque, not secret): u1's page,
      // read ahead under that checkpoint, must not be handed to them.
      const forged = await t.pull(
        { model: 'todos', checkpoint: first.checkpoint, limit: 3 },
        { userId: 'u2' },
      )
      expect(forged.upserts.length).toBeGreaterThan(0)
      expect(forged.upserts.every((u) => u.record.ownerId === 'u2')).toBe(true)
      // u1 still gets its own page (taken from the read-ahead or read again) and a complete load.
      await one.pullAll(3)
      const two = new Replica(t, undefined, { userId: 'u2' })
      await two.pullAll(3)
      expect(one.state()).toEqual(await serverState(t, undefined, { userId: 'u1' }))
      expect(two.state()).toEqual(await serverState(t, undefined, { userId: 'u2' }))
      expect(one.records.size).toBe(12)
      expect(two.records.size).toBe(12)
    })
  })
}
