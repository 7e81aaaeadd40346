import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { TidesyncError } from '../../errors.js'
import type { RecordWithMeta, Tombstone } from '../../protocol.js'
import { tidesyncTables } from '../../schema/metadata.js'
import type { ContractEnv } from './env.js'

function isRecord(value: RecordWithMeta | Tombstone | null): value is RecordWithMeta {
  return value !== null && 'record' in value
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toSatisfy(
    (error: unknown) => error instanceof TidesyncError && error.code === code,
  )
}

export function servicesContract(env: () => ContractEnv): void {
  describe('services', () => {
    it('creates with a server uid (UUIDv7) and finds it with its metadata', async () => {
      const t = env().create()
      const created = await t.services.todos!.create({ data: { ownerId: 'u1', title: 'write tests' } }, {})
      expect(isRecord(created)).toBe(true)
      const { record, meta } = created as RecordWithMeta
      expect(record.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
      expect(record).toMatchObject({ ownerId: 'u1', title: 'write tests', done: false, likes: 0 })
      expect(meta.rev).toBeGreaterThan(0)
      expect(meta.deleted_at).toBeNull()
      expect(Object.keys(meta.clocks).sort()).toEqual(['ownerId', 'title'])
      expect(await t.services.todos!.findUnique({ uid: record.uid }, {})).toEqual({ record, meta })
    })

    it('create is an upsert, and re-creating a deleted uid works', async () => {
      const t = env().create()
      const uid = uuidv7()
      await t.services.todos!.create({ uid, data: { ownerId: 'u1', title: 'one' } }, {})
      const again = (await t.services.todos!.create(
        { uid, data: { ownerId: 'u1', title: 'two' } },
        {},
      )) as RecordWithMeta
      expect(again.record.title).toBe('two')
      const tombstone = await t.services.todos!.delete({ uid }, {})
      expect(tombstone.uid).toBe(uid)
      expect(await t.services.todos!.findUnique({ uid }, {})).toBeNull()
      const recreated = (await t.services.todos!.create(
        { uid, data: { ownerId: 'u1', title: 'three' } },
        {},
      )) as RecordWithMeta
      expect(recreated.record.title).toBe('three')
      expect(recreated.meta.deleted_at).toBeNull()
      expect(recreated.meta.rev).toBeGreaterThan(tombstone.rev)
    })

    it('delete keeps a tombstone in the metadata and the change log', async () => {
      const t = env().create()
      const { record } = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'x' } },
        {},
      )) as RecordWithMeta
      const tombstone = await t.services.todos!.delete({ uid: record.uid }, {})
      const { meta, changes } = tidesyncTables
      const [row] = await env().database.db.select().from(meta).where(sql`${meta.uid} = ${record.uid}`)
      expect(row?.deletedAt?.toISOString()).toBe(tombstone.deleted_at)
      const log = await env().database.db.select().from(changes).where(sql`${changes.uid} = ${record.uid}`)
      expect(log.map((l) => l.op)).toEqual(['upsert', 'delete'])
      expect(log[1]!.before).toMatchObject({ title: 'x', owner_id: 'u1' })
      // Deleting again, or updating, leaves the tombstone as it is.
      expect(await t.services.todos!.delete({ uid: record.uid }, {})).toEqual(tombstone)
      expect(await t.services.todos!.update({ uid: record.uid, patch: { title: 'y' } }, {})).toEqual(
        tombstone,
      )
    })

    it('update and delete of a uid that never existed are NOT_FOUND', async () => {
      const t = env().create()
      await expectCode(t.services.todos!.update({ uid: uuidv7(), patch: { title: 'y' } }, {}), 'NOT_FOUND')
      await expectCode(t.services.todos!.delete({ uid: uuidv7() }, {}), 'NOT_FOUND')
    })

    it('repairs a missing metadata row on the next write', async () => {
      const t = env().create()
      const uid = uuidv7()
      await env().database.db.execute(
        sql`INSERT INTO todos (uid, owner_id, title) VALUES (${uid}, 'u1', 'legacy')`,
      )
      const found = await t.services.todos!.findUnique({ uid }, {})
      expect(found?.meta.rev).toBe(0)
      const updated = (await t.services.todos!.update({ uid, patch: { done: true } }, {})) as RecordWithMeta
      expect(updated.meta.rev).toBeGreaterThan(0)
      const { meta } = tidesyncTables
      const rows = await env().database.db.select().from(meta).where(sql`${meta.uid} = ${uid}`)
      expect(rows).toHaveLength(1)
      expect(rows[0]!.clocks).toHaveProperty('done')
    })

    it('any error rolls the row, the metadata and the log back', async () => {
      const refuse = { value: false }
      const t = env().create({ todos: { canWrite: () => !refuse.value } })
      const { record } = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'keep' } },
        {},
      )) as RecordWithMeta
      const before = await env().snapshot()
      refuse.value = true
      // canWrite runs after the UPDATE, so a rollback is what keeps the row.
      await expectCode(
        t.services.todos!.update({ uid: record.uid, patch: { title: 'changed' } }, {}),
        'FORBIDDEN',
      )
      await expectCode(t.services.todos!.delete({ uid: record.uid }, {}), 'FORBIDDEN')
      await expectCode(t.services.todos!.create({ data: { ownerId: 'u1', title: 'new' } }, {}), 'FORBIDDEN')
      expect(await env().snapshot()).toEqual(before)
    })

    it('findMany: equality, null, in and compound ranges that keep every bound', async () => {
      const t = env().create()
      for (let priority = 0; priority < 10; priority++) {
        await t.services.todos!.create(
          {
            data: {
              ownerId: priority % 2 ? 'odd' : 'even',
              title: `p${priority}`,
              priority,
              dueAt: priority < 5 ? new Date(Date.UTC(2030, 0, priority + 1)).toISOString() : null,
            },
          },
          {},
        )
      }
      const titles = async (where: Record<string, unknown>) =>
        (await t.services.todos!.findMany({ where: where as never }, {})).map((r) => r.record.title).sort()
      expect(await titles({ ownerId: 'odd' })).toEqual(['p1', 'p3', 'p5', 'p7', 'p9'])
      expect(await titles({ dueAt: null })).toEqual(['p5', 'p6', 'p7', 'p8', 'p9'])
      expect(await titles({ priority: { in: [2, 4, 11] } })).toEqual(['p2', 'p4'])
      expect(await titles({ priority: { in: [] } })).toEqual([])
      expect(await titles({ priority: { gte: 2, lte: 4 } })).toEqual(['p2', 'p3', 'p4'])
      expect(await titles({ priority: { gt: 2, lt: 4 } })).toEqual(['p3'])
      expect(await titles({ priority: { gte: 1, lt: 9, gt: 3, lte: 6 } })).toEqual(['p4', 'p5', 'p6'])
      expect(
        await titles({ dueAt: { gte: '2030-01-02T00:00:00.000Z', lt: '2030-01-04T00:00:00Z' } }),
      ).toEqual(['p1', 'p2'])
      expect(await titles({ ownerId: 'even', priority: { gt: 4 } })).toEqual(['p6', 'p8'])
      expect(await t.services.todos!.findMany({ limit: 3 }, {})).toHaveLength(3)
    })

    it('refuses unknown columns, wrong types and invalid dates', async () => {
      const t = env().create()
      const s = t.services.todos!
      await expectCode(s.findMany({ where: { nope: 1 } as never }, {}), 'UNKNOWN_COLUMN')
      await expectCode(s.findMany({ where: { priority: 'high' } as never }, {}), 'INVALID_TYPE')
      await expectCode(s.findMany({ where: { dueAt: { gte: '2024-02-30' } } as never }, {}), 'INVALID_DATE')
      await expectCode(s.findMany({ where: { priority: { near: 3 } } as never }, {}), 'BAD_REQUEST')
      await expectCode(s.create({ data: { ownerId: 'u', title: 't', nope: 1 } }, {}), 'UNKNOWN_COLUMN')
      await expectCode(s.create({ data: { ownerId: 'u', title: 7 } }, {}), 'INVALID_TYPE')
      await expectCode(s.create({ data: { ownerId: 'u' } }, {}), 'INVALID_TYPE')
      await expectCode(
        s.create({ data: { ownerId: 'u', title: 't', dueAt: 'yesterday' } }, {}),
        'INVALID_DATE',
      )
      await expectCode(
        s.create({ data: { ownerId: 'u', title: 't', priority: 2 ** 40 } }, {}),
        'INVALID_TYPE',
      )
      await expectCode(
        s.create({ uid: 'not-a-uuid', data: { ownerId: 'u', title: 't' } }, {}),
        'INVALID_TYPE',
      )
      expect(await s.findMany({}, {})).toEqual([])
    })
  })
}
