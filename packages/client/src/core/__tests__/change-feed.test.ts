import { formatHlc, HybridClock, type RecordWithMeta } from '@tidesync/protocol'
import { Dexie } from 'dexie'
import type { Subscription } from 'rxjs'
import { v7 as uuidv7 } from 'uuid'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, uniqueDbName, waitFor } from '../../__tests__/helpers/idb.js'
import { schema } from '../../__tests__/helpers/schema.js'
import { applyServerBatch } from '../apply-server.js'
import type { ClientContext } from '../context.js'
import type { RecordChanges } from '../db/change-feed.js'
import { type LocalDb, openLocalDb } from '../db/database.js'
import { systemClock, systemTimers } from '../env.js'
import { liveCount, liveRecord, liveRecords } from '../live/live-records.js'
import type { FindOptions } from '../live/query.js'
import { createRecord, deleteRecord, incrementRecord, updateRecord } from '../local-writes.js'
import { type ModelInfo, readSchema } from '../schema/model.js'

// Live queries kept from the change feed, on the local store alone: every kind of write that
// reaches the record table (local writes, pulled pages, live changes, deletes, evictions, another
// connection's writes) and, after each, every live result must equal a fresh read of the table.

type Row = Record<string, unknown>
const silent = { debug() {}, info() {}, warn() {}, error() {} }
// An index per order column and a compound one, so both the index walk and the sort are used.
const options = {
  todos: { counters: ['likes'], indexes: ['projectId', 'likes', 'title', ['projectId', 'likes']] },
}

const opened: Array<{ close(): void }> = []
const subscriptions: Subscription[] = []
afterEach(() => {
  for (const s of subscriptions.splice(0)) s.unsubscribe()
  for (const db of opened.splice(0)) db.close()
})

async function openCtx(): Promise<{ ctx: ClientContext; model: ModelInfo; db: LocalDb; name: string }> {
  const models = readSchema(schema, options)
  const name = uniqueDbName('feed')
  const db = await openLocalDb(name, models, {})
  opened.push(db)
  const ctx: ClientContext = {
    db,
    models,
    hlc: new HybridClock('client1', () => Date.now()),
    clock: systemClock,
    timers: systemTimers,
    logger: silent,
    clientId: 'client-1',
    chunkSize: 1000,
  }
  return { ctx, model: models.find((m) => m.key === 'todos')!, db, name }
}

/** A second connection to the same database, as another tab would have (no middleware, no schema). */
async function otherConnection(name: string): Promise<Dexie> {
  const other = new Dexie(name)
  await other.open()
  opened.push(other)
  return other
}

/** A small deterministic PRNG (mulberry32): the same sequence every run. */
function random(seed: number) {
  let a = seed
  const next = () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!,
  }
}

let rev = 10
/** A server state (as a pull or a live change carries it). */
function serverState(uid: string, fields: Row): RecordWithMeta {
  rev++
  const at = Date.UTC(2025, 0, 1) + rev * 1000
  const clock = formatHlc(at, 0, 'server')
  return {
    record: {
      uid,
      title: 'x',
      done: false,
      projectId: 'a',
      likes: 0,
      dueAt: null,
      tags: null,
      ...fields,
    } as never,
    meta: {
      created_at: new Date(at).toISOString(),
      updated_at: new Date(at).toISOString(),
      deleted_at: null,
      rev,
      clocks: { title: clock, done: clock, projectId: clock, likes: clock, dueAt: clock, tags: clock },
    },
  }
}

/** The oracle: the query's rows from a plain read of the whole table (nulls first, ties by uid). */
function expected(rows: Row[], where: (row: Row) => boolean, opts: FindOptions): Row[] {
  const orderBy = opts.orderBy ?? 'uid'
  const descending = orderBy.startsWith('-')
  const key = descending ? orderBy.slice(1) : orderBy
  const value = (v: unknown) => (v instanceof Date ? v.getTime() : v)
  const cmp = (x: unknown, y: unknown) => {
    const a = value(x)
    const b = value(y)
    if (a === b) return 0
    if (a === null || a === undefined) return -1
    if (b === null || b === undefined) return 1
    return (a as number) < (b as number) ? -1 : 1
  }
  const sorted = rows
    .filter(where)
    .sort((a, b) => (descending ? -1 : 1) * cmp(a[key], b[key]) || cmp(a.uid, b.uid))
  return opts.limit === undefined ? sorted : sorted.slice(0, opts.limit)
}

interface Watched {
  name: string
  where: Row
  test: (row: Row) => boolean
  opts: FindOptions
  latest: Row[] | undefined
  emissions: number
}

function watch(
  db: LocalDb,
  model: ModelInfo,
  name: string,
  where: Row,
  test: (row: Row) => boolean,
  opts: FindOptions,
) {
  const watched: Watched = { name, where, test, opts, latest: undefined, emissions: 0 }
  subscriptions.push(
    liveRecords(db, model, where as never, opts).subscribe({
      next: (rows) => {
        watched.latest = rows
        watched.emissions++
      },
      error: (error) => {
        throw error
      },
    }),
  )
  return watched
}

/** Every live result equals the oracle over the table as it is now. */
async function converged(db: LocalDb, model: ModelInfo, queries: Watched[], what: string): Promise<void> {
  let mismatch = ''
  await waitFor(
    async () => {
      const rows = await db.records(model).toArray()
      for (const q of queries) {
        const want = expected(rows, q.test, q.opts)
        try {
          expect(q.latest).toEqual(want)
        } catch {
          mismatch = `${q.name}: got ${JSON.stringify(q.latest?.map((r) => r.uid))}, want ${JSON.stringify(want.map((r) => r.uid))}`
          return false
        }
      }
      return true
    },
    2000,
    `${what} (${mismatch})`,
  ).catch(() => {
    throw new Error(`live results differ after ${what}: ${mismatch}`)
  })
}

function standardQueries(db: LocalDb, model: ModelInfo): Watched[] {
  const inRange = (row: Row) => (row.likes as number) >= 3 && (row.likes as number) <= 8
  return [
    // orderBy + limit through the compound index [projectId+likes], descending.
    watch(db, model, 'top likes in a', { projectId: 'a' }, (r) => r.projectId === 'a', {
      orderBy: '-likes',
      limit: 5,
    }),
    // By uid (the primary key) with a filter the index does not decide.
    watch(db, model, 'first done', { done: true }, (r) => r.done === true, { limit: 4 }),
    // A where, a sort in memory, no limit.
    watch(db, model, 'b by title', { projectId: 'b' }, (r) => r.projectId === 'b', { orderBy: 'title' }),
    // A nullable order column (no index walk), descending with a limit.
    watch(db, model, 'latest due', {}, () => true, { orderBy: '-dueAt', limit: 6 }),
    // A range where on the order column's own index.
    watch(db, model, 'likes 3..8', { likes: { gte: 3, lte: 8 } }, inRange, { orderBy: 'likes', limit: 3 }),
    // Ascending title over everything, with a limit (a window that rows leave and enter).
    watch(db, model, 'first titles', {}, () => true, { orderBy: 'title', limit: 7 }),
  ]
}

describe('change feed', () => {
  it("passes this connection's committed rows (not as a reset), deletes as null, and aborted transactions not at all", async () => {
    const { ctx, model, db, name } = await openCtx()
    const events: RecordChanges[] = []
    const stop = db.feed.listen(model.recordsTable, (changes) => events.push(changes))
    const created = await createRecord(ctx, model, { title: 'one', projectId: 'a' })
    await sleep(20)
    expect(events).toHaveLength(1)
    expect(events[0]!.reset).toBe(false)
    expect([...events[0]!.rows.entries()]).toEqual([[created.uid, created]])
    // The row is a copy: the caller's object may change afterwards.
    ;(created as Row).title = 'changed by the caller'
    expect(events[0]!.rows.get(created.uid as string)).toMatchObject({ title: 'one' })

    await deleteRecord(ctx, model, created.uid as string)
    await sleep(20)
    expect(events).toHaveLength(2)
    expect([...events[1]!.rows.entries()]).toEqual([[created.uid, null]])

    // Aborted: nothing.
    const failed = await db.dexie
      .transaction('rw', db.records(model), async () => {
        await db.records(model).put({ uid: uuidv7(), title: 'never', projectId: 'a', done: false, likes: 0 })
        throw new Error('abort')
      })
      .catch((error: Error) => error.message)
    expect(failed).toBe('abort')
    await sleep(20)
    expect(events).toHaveLength(2)

    // Another connection's write: a reset, without values.
    const other = await otherConnection(name)
    await other.table(model.recordsTable).put({ uid: uuidv7(), title: 'from another tab', projectId: 'a' })
    await waitFor(() => events.length === 3, 2000, 'reset')
    expect(events[2]!.reset).toBe(true)
    expect(events[2]!.rows.size).toBe(0)
    // A write of this connection to another table (metadata only): nothing for the records.
    await db.meta(model).put({ uid: uuidv7() } as never)
    await sleep(20)
    expect(events).toHaveLength(3)
    stop()
  })
})

describe('live queries from the change feed', () => {
  it('follow local writes, pulled pages, live changes, deletes and evictions', async () => {
    const { ctx, model, db } = await openCtx()
    // A pulled page of 40 records (metadata in a page).
    const uids = Array.from({ length: 40 }, () => uuidv7()).sort()
    await applyServerBatch(ctx, model, {
      upserts: uids.map((uid, i) =>
        serverState(uid, {
          title: `t${(i * 7) % 40}`,
          projectId: i % 3 === 0 ? 'a' : 'b',
          done: i % 4 === 0,
          likes: i % 11,
          dueAt: i % 5 ? new Date(Date.UTC(2025, 1, i)).toISOString() : null,
        }),
      ),
    })
    const queries = standardQueries(db, model)
    await converged(db, model, queries, 'the first read')

    const created = await createRecord(ctx, model, { title: 'a0', projectId: 'a', likes: 0 })
    await converged(db, model, queries, 'a local create')
    await incrementRecord(ctx, model, created.uid as string, 'likes', 50)
    await converged(db, model, queries, 'an increment into the top window')
    const top = queries[0]!.latest![0]!
    await updateRecord(ctx, model, top.uid as string, { projectId: 'b' })
    await converged(db, model, queries, 'the top row leaving its where')
    await updateRecord(ctx, model, uids[1]!, { title: '!first', done: true })
    await converged(db, model, queries, 'an update moving into windows')
    await deleteRecord(ctx, model, uids[3]!)
    await converged(db, model, queries, 'a local delete')

    // A pulled page changing many rows at once, and a live change (one state).
    await applyServerBatch(ctx, model, {
      upserts: uids
        .slice(10, 30)
        .map((uid, i) => serverState(uid, { title: `p${i}`, projectId: 'a', likes: 20 - i })),
    })
    await converged(db, model, queries, 'a pulled page')
    await applyServerBatch(ctx, model, {
      upserts: [serverState(uids[12]!, { title: 'live', projectId: 'a', likes: 99 })],
    })
    await converged(db, model, queries, 'a live change')
    // Server deletes (tombstones) and evictions.
    const bottom = queries[0]!.latest!.at(-1)!
    await applyServerBatch(ctx, model, {
      deletes: [{ uid: bottom.uid as string, deleted_at: new Date().toISOString(), rev: ++rev }],
    })
    await converged(db, model, queries, 'a server delete at the window boundary')
    await applyServerBatch(ctx, model, { evict: queries[5]!.latest!.slice(0, 3).map((r) => r.uid as string) })
    await converged(db, model, queries, 'evictions from a window')
  })

  it('a write from a second connection (another tab) triggers a re-read with the right result', async () => {
    const { ctx, model, db, name } = await openCtx()
    for (let i = 0; i < 8; i++) await createRecord(ctx, model, { title: `t${i}`, projectId: 'a', likes: i })
    const queries = standardQueries(db, model)
    await converged(db, model, queries, 'the first read')
    const other = await otherConnection(name)
    const table = other.table(model.recordsTable)
    const before = queries.map((q) => q.emissions)
    await table.put({
      uid: uuidv7(),
      title: '0 from the other tab',
      projectId: 'a',
      done: true,
      likes: 100,
      dueAt: null,
      tags: null,
    })
    await converged(db, model, queries, 'a put from another connection')
    const first = queries[0]!.latest![1]!
    await table.delete(first.uid as string)
    await converged(db, model, queries, 'a delete from another connection')
    await table.where('likes').below(3).modify({ projectId: 'b' })
    await converged(db, model, queries, 'a modify of a range from another connection')
    expect(queries[0]!.emissions).toBeGreaterThan(before[0]!)
  })

  it('an aborted transaction emits nothing', async () => {
    const { ctx, model, db } = await openCtx()
    for (let i = 0; i < 5; i++) await createRecord(ctx, model, { title: `t${i}`, projectId: 'a', likes: i })
    const queries = standardQueries(db, model)
    await converged(db, model, queries, 'the first read')
    await sleep(20)
    const before = queries.map((q) => q.emissions)
    const results = queries.map((q) => q.latest)
    const error = await db.dexie
      .transaction('rw', [db.records(model), db.meta(model)], async () => {
        await db
          .records(model)
          .put({ uid: uuidv7(), title: '!', projectId: 'a', done: true, likes: 7, dueAt: null })
        await db.records(model).delete(queries[0]!.latest![0]!.uid as string)
        throw new Error('rolled back')
      })
      .catch((e: Error) => e.message)
    expect(error).toBe('rolled back')
    await sleep(50)
    expect(queries.map((q) => q.emissions)).toEqual(before)
    expect(queries.map((q) => q.latest)).toEqual(results)
    await converged(db, model, queries, 'the rollback')
  })

  it('stay equal to a fresh read through a long random mix of writes (live counts too)', async () => {
    const { ctx, model, db, name } = await openCtx()
    const rand = random(20251205)
    const other = await otherConnection(name)
    const projects = ['a', 'b', 'c']
    const fields = () => ({
      title: `t${rand.int(30)}`,
      projectId: rand.pick(projects),
      done: rand.int(2) === 0,
      dueAt: rand.int(4) === 0 ? null : new Date(Date.UTC(2025, 0, 1 + rand.int(20))),
    })
    /** The same fields as a server sends them (dates as ISO strings). */
    const wireFields = () => {
      const f = fields()
      return { ...f, dueAt: f.dueAt?.toISOString() ?? null }
    }
    await applyServerBatch(ctx, model, {
      upserts: Array.from({ length: 35 }, () =>
        serverState(uuidv7(), { ...wireFields(), likes: rand.int(12) }),
      ),
    })
    const queries = standardQueries(db, model)
    const single = new Map<string, { latest: Row | undefined }>()
    const all = async () => (await db.records(model).toCollection().primaryKeys()) as string[]
    for (const uid of (await all()).slice(0, 4)) {
      const holder = { latest: undefined as Row | undefined }
      single.set(uid, holder)
      subscriptions.push(liveRecord(db, model, uid).subscribe((row) => (holder.latest = row)))
    }
    /** Live counts: of everything, of an indexed equality, and of a where no index decides. */
    const counts = [
      { where: {}, test: (_: Row) => true, latest: -1 },
      { where: { projectId: 'a' }, test: (r: Row) => r.projectId === 'a', latest: -1 },
      {
        where: { done: true, likes: { gte: 3 } },
        test: (r: Row) => r.done === true && (r.likes as number) >= 3,
        latest: -1,
      },
    ]
    for (const count of counts) {
      subscriptions.push(liveCount(db, model, count.where as never).subscribe((n) => (count.latest = n)))
    }
    const countsConverged = async (what: string) => {
      const rows = await db.records(model).toArray()
      for (const count of counts) {
        const want = rows.filter(count.test).length
        await waitFor(
          () => count.latest === want,
          2000,
          `count$ ${JSON.stringify(count.where)} after ${what}`,
        )
      }
    }
    await converged(db, model, queries, 'the first read')
    await countsConverged('the first read')
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['create', async () => createRecord(ctx, model, { ...fields(), dueAt: null, likes: rand.int(12) })],
      ['update', async () => updateRecord(ctx, model, rand.pick(await all()), fields())],
      [
        'increment',
        async () => incrementRecord(ctx, model, rand.pick(await all()), 'likes', rand.int(9) - 4),
      ],
      ['delete', async () => deleteRecord(ctx, model, rand.pick(await all()))],
      [
        'pulled page',
        async () => {
          const uids = await all()
          const states = Array.from({ length: 1 + rand.int(6) }, () =>
            serverState(rand.int(3) === 0 ? uuidv7() : rand.pick(uids), {
              ...wireFields(),
              likes: rand.int(12),
            }),
          )
          await applyServerBatch(ctx, model, { upserts: states })
        },
      ],
      [
        'server delete',
        async () =>
          applyServerBatch(ctx, model, {
            deletes: [{ uid: rand.pick(await all()), deleted_at: new Date().toISOString(), rev: ++rev }],
          }),
      ],
      ['eviction', async () => applyServerBatch(ctx, model, { evict: [rand.pick(await all())] })],
      [
        'other tab',
        async () => {
          const uid = rand.pick(await all())
          if (rand.int(2)) await other.table(model.recordsTable).delete(uid)
          else
            await other
              .table(model.recordsTable)
              .update(uid, { likes: rand.int(12), title: `o${rand.int(30)}` })
        },
      ],
      [
        'aborted',
        async () =>
          db.dexie
            .transaction('rw', db.records(model), async () => {
              await db.records(model).delete(rand.pick(await all()))
              throw new Error('abort')
            })
            .catch(() => {}),
      ],
    ]
    for (let step = 0; step < 80; step++) {
      if ((await db.records(model).count()) < 10) await ops[0]![1]()
      const [what, run] = rand.pick(ops)
      await run()
      await converged(db, model, queries, `step ${step}: ${what}`)
      await countsConverged(`step ${step}: ${what}`)
      for (const [uid, holder] of single) {
        const row = await db.records(model).get(uid)
        await waitFor(() => JSON.stringify(holder.latest) === JSON.stringify(row), 2000, `get$ after ${what}`)
      }
    }
  })
})
