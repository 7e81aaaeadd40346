import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { noopLogger } from '../../logger.js'
import type { ClientMeta, FullSyncResult, RecordWithMeta } from '../../protocol.js'
import { createTidesync } from '../../tidesync.js'
import { todos } from '../fixtures/schema.js'
import type { ContractEnv } from './env.js'

const OLD = '2020-01-01T00:00:00.000Z'
const FUTURE_OK = (now: number) => new Date(now + 1000).toISOString()

function metaOf(record: RecordWithMeta, overrides: Partial<ClientMeta> = {}): ClientMeta {
  return {
    created_at: record.meta.created_at,
    updated_at: record.meta.updated_at,
    deleted_at: null,
    ...overrides,
  }
}

export function fullContract(env: () => ContractEnv): void {
  describe('sync:full', () => {
    it('decides every case of the reconcile table', async () => {
      const t = env().create()
      const s = t.services.todos!
      const make = async (title: string, ownerId = 'u1') =>
        (await s.create({ data: { ownerId, title } }, {})) as RecordWithMeta
      const inSync = await make('in sync')
      const serverNewer = await make('server newer')
      const clientNewer = await make('client newer')
      const clientLacks = await make('client lacks')
      const serverDeleted = await make('server deleted')
      const leftWhere = await make('left where')
      const clientDeleted = await make('client deleted')
      const staleMeta = metaOf(serverNewer)
      await s.update({ uid: serverNewer.record.uid, patch: { title: 'newer on server' } }, {})
      await s.delete({ uid: serverDeleted.record.uid }, {})
      await s.update({ uid: leftWhere.record.uid, patch: { ownerId: 'u2' } }, {})
      const clientOnly = uuidv7()
      const clientOnlyTombstone = uuidv7()

      const metadata: Record<string, ClientMeta> = {
        [inSync.record.uid]: metaOf(inSync),
        [serverNewer.record.uid]: staleMeta,
        [clientNewer.record.uid]: metaOf(clientNewer, { updated_at: FUTURE_OK(Date.now()) }),
        [serverDeleted.record.uid]: metaOf(serverDeleted),
        [leftWhere.record.uid]: metaOf(leftWhere),
        [clientDeleted.record.uid]: metaOf(clientDeleted, { deleted_at: new Date().toISOString() }),
        // Created long ago, never synced: the seed's cutoffDate would have dropped it.
        [clientOnly]: { created_at: OLD, updated_at: OLD, deleted_at: null },
        [clientOnlyTombstone]: { created_at: OLD, updated_at: OLD, deleted_at: OLD },
      }
      const result = (await t.fullSync(
        { model: 'todos', where: { ownerId: 'u1' }, metadata },
        {},
      )) as FullSyncResult
      expect(result.addClient.map((r) => r.record.uid)).toEqual([clientLacks.record.uid])
      expect(result.updateClient.map((r) => r.record.title)).toEqual(['newer on server'])
      expect(result.updateDatabase).toEqual([clientNewer.record.uid])
      expect(result.addDatabase).toEqual([clientOnly])
      expect(result.evictClient).toEqual([leftWhere.record.uid])
      expect(result.deleteClient.map((d) => d.uid).sort()).toEqual(
        [serverDeleted.record.uid, clientDeleted.record.uid, clientOnlyTombstone].sort(),
      )
      expect(result.checkpoint).toMatch(/^r:\d+$/)

      // Never resurrected; evicted records are not deleted; client tombstones delete on the server.
      expect(await s.findUnique({ uid: serverDeleted.record.uid }, {})).toBeNull()
      expect((await s.findUnique({ uid: leftWhere.record.uid }, {}))?.record.ownerId).toBe('u2')
      expect(await s.findUnique({ uid: clientDeleted.record.uid }, {})).toBeNull()
      expect(await s.findUnique({ uid: clientOnlyTombstone }, {})).toBeNull()
    })

    it('reads all metadata in a constant number of queries (not one per uid)', async () => {
      const queries: string[] = []
      const logged = env().database.withQueryLog((q) => queries.push(q))
      const t = env().create()
      const count = async (n: number) => {
        await env().database.reset()
        const metadata: Record<string, ClientMeta> = {}
        for (let i = 0; i < n; i++) {
          const r = (await t.services.todos!.create(
            { data: { ownerId: 'u1', title: `t${i}` } },
            {},
          )) as RecordWithMeta
          if (i % 2 === 0) metadata[r.record.uid] = metaOf(r)
          metadata[uuidv7()] = { created_at: OLD, updated_at: OLD, deleted_at: null }
        }
        const reader = createTidesync({
          db: logged,
          ipc: env().ipc,
          logger: noopLogger,
          models: { todos: { table: todos } },
        })
        queries.length = 0
        await reader.fullSync({ model: 'todos', metadata }, {})
        return queries.length
      }
      const small = await count(4)
      const large = await count(40)
      expect(large).toBe(small)
      // BEGIN/SET TRANSACTION (one snapshot), jit off, the checkpoint, the count of matching
      // records, the records that differ, the client uids outside where+scope.
      expect(small).toBeLessThanOrEqual(7)
    })

    it('repairs rows that have no metadata and sends them with a revision', async () => {
      const t = env().create()
      const uid = uuidv7()
      await env().database.db.execute(
        sql`INSERT INTO todos (uid, owner_id, title) VALUES (${uid}, 'u1', 'legacy')`,
      )
      const result = await t.fullSync({ model: 'todos', metadata: {} }, {})
      expect(result.addClient).toHaveLength(1)
      expect(result.addClient[0]!.meta.rev).toBeGreaterThan(0)
      const pulled = await t.pull({ model: 'todos', checkpoint: 'r:0' }, {})
      expect(pulled.upserts.map((u) => u.record.uid)).toEqual([uid])
    })

    it('a client tombstone the server refuses (canWrite) brings the record back', async () => {
      const t = env().create({ todos: { canWrite: (_ctx, _record, check) => check.op !== 'delete' } })
      const r = (await t.services.todos!.create(
        { data: { ownerId: 'u1', title: 'protected' } },
        {},
      )) as RecordWithMeta
      const result = await t.fullSync(
        { model: 'todos', metadata: { [r.record.uid]: metaOf(r, { deleted_at: new Date().toISOString() }) } },
        {},
      )
      expect(result.updateClient.map((u) => u.record.uid)).toEqual([r.record.uid])
      expect(result.deleteClient).toEqual([])
      expect(await t.services.todos!.findUnique({ uid: r.record.uid }, {})).not.toBeNull()
    })

    it('refuses a metadata dictionary over maxMetadataEntries and writes nothing', async () => {
      const t = env().create({ maxMetadataEntries: 3 })
      const metadata: Record<string, ClientMeta> = {}
      for (let i = 0; i < 4; i++) metadata[uuidv7()] = { created_at: OLD, updated_at: OLD, deleted_at: OLD }
      const reply = await t.handle('sync:full', { model: 'todos', metadata }, {})
      expect(reply.error?.code).toBe('PAYLOAD_TOO_LARGE')
    })
  })
}
