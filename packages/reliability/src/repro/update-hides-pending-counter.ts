/**
 * Repro: an update of a record whose counter has a delta pending in the write buffer answers
 * (and publishes live) the record with the counter WITHOUT that delta. The client stores that
 * state (it carries the newest revision), and since the flush that later adds the delta to the
 * row makes no new revision, the client keeps the stale counter for good: it never converges
 * with the database. Seen in src/faults/memory-primary-restart.test.ts (a client's likes stuck
 * at 5 while the database held 8: '+3 then update' in one push).
 *
 * Why: `WriteBufferWrites.update` (packages/server/src/write/write-buffer-writes.ts) returns
 * `updateRow(...)` (UPDATE ... RETURNING) for models that are not `buffered`: the database row,
 * whose counter columns lack the pending deltas. The increment path shows the overlaid value,
 * the update path does not.
 *
 * Fixed: `stageChange` (packages/server/src/write/apply-change.ts) overlays the record's pending
 * write-buffer state (read before the transaction, confirmed unchanged under the record's lock)
 * onto the row `UPDATE ... RETURNING` gave, for every column the update did not set: the answer,
 * the live push and the next change of a batch carry the counter with its pending delta.
 *
 * Run: npx tsx --conditions=source src/repro/update-hides-pending-counter.ts   (no servers needed)
 * Exit code 1 = bug reproduced, 0 = fixed.
 */
import { PGlite } from '@electric-sql/pglite'
import { createIpc } from '@tidesync/ipc'
import { createTidesync, ensureSchema, noopLogger } from '@tidesync/server'
import type { PushResult } from '@tidesync/server/protocol'
import { createWriteBuffer } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/pglite'
import { ITEMS_DDL, items } from '../harness/schema.js'

const out = (line: string) => process.stdout.write(`${line}\n`)

const pglite = new PGlite()
const db = drizzle(pglite)
await ensureSchema(db)
await db.execute(sql.raw(ITEMS_DDL))
const ipc = await createIpc({ driver: 'memory' })
const buffer = createWriteBuffer({
  ipc,
  databases: { default: db },
  checkpointPath: false,
  handleSignals: false,
  flushInterval: 3_600_000,
  logger: noopLogger,
})
await buffer.ready
const tidesync = createTidesync({
  db,
  ipc,
  writeBuffer: buffer,
  models: { items: { table: items, counters: ['likes'] } },
  logger: noopLogger,
})
const uid = '01900000-0000-7000-8000-000000000002'
let tick = Date.now()
const clock = () => `${new Date(tick++).toISOString()}-0000-client1`
const push = async (change: Record<string, unknown>) => {
  const reply = await tidesync.handle(
    'sync:push',
    { clientId: 'client-1', changes: [{ model: 'items', uid, clock: clock(), ...change }] },
    {},
  )
  const outcome = (reply.result as PushResult).outcomes[0] as {
    record?: { likes?: number }
    meta?: { rev?: number }
  }
  return { likes: outcome.record?.likes, rev: outcome.meta?.rev }
}

await push({ id: 'c1', op: 'create', data: { owner: 'a', title: 't' } })
const afterIncrement = await push({ id: 'c2', op: 'increment', deltas: { likes: 3 } })
const afterUpdate = await push({ id: 'c3', op: 'update', patch: { note: 'edited' } })
out(`increment answered likes=${afterIncrement.likes} (rev ${afterIncrement.rev})`)
out(
  `update    answered likes=${afterUpdate.likes} (rev ${afterUpdate.rev})  <- the newest state a client stores`,
)
await buffer.flush()
const [row] = (await db.execute(sql`SELECT likes FROM items`)).rows as Array<{ likes: number }>
out(`database after the flush: likes=${row?.likes} (no new revision tells clients)`)
const reproduced = afterUpdate.likes !== row?.likes
out(
  reproduced
    ? 'BUG REPRODUCED: the update published a counter without its pending delta'
    : 'fixed: the update answered and published the counter with its pending delta',
)
await buffer.close()
await ipc.close()
await pglite.close()
process.exit(reproduced ? 1 : 0)
