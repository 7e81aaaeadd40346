/**
 * Repro: a read between the commit of an increment and the hand-over of its delta to the write
 * buffer returns the NEW revision with the OLD counter. A client that applies it (it carries the
 * newest revision) keeps the stale counter unless the live push of that revision reaches it
 * afterwards; if the live push is lost (the server is killed after the commit, a Redis publish
 * fails: both seen in the fault tests) or applied before the read's answer, nothing corrects it:
 * its next pull starts past that revision. Seen in src/faults/memory-primary-restart.test.ts and
 * redis-restart.test.ts (clients stuck 2-3 likes below the database).
 *
 * Why: `commitChanges` (packages/server/src/write/commit.ts) commits the change and its revision,
 * then `afterCommitIncrement` marks the row pending and hands the delta to the buffer. Between
 * the two, a pull sees the revision in the change log and reads the row without the delta.
 *
 * The repro holds the hand-over at a gate in front of the real write buffer (the increment waits,
 * then runs unchanged), pulls in between, then pulls again from the checkpoint it was given.
 *
 * Fixed: the delta's record is marked "hand-off in flight" in IPC inside the transaction, under
 * the record's lock (`reserve`), and settled only after the hand-over (`handOff`); a read that
 * finds the mark waits for it before overlaying the pending state, so it returns the revision
 * with its counter. A hand-over the buffer refuses is written to the table before the mark
 * settles (finding 2's fix). This repro first held the gate for good, so its pull waited out the
 * mark's 5 s expiry (the case of a server that died after the commit, whose delta is lost: the
 * old counter is then the truth); it now opens the gate 300 ms after the pull started, and
 * checks that the pull waited and returned likes=1 at the new revision.
 *
 * Run: npx tsx --conditions=source src/repro/pull-races-counter-handover.ts   (no servers needed)
 * Exit code 1 = bug reproduced, 0 = fixed.
 */
import { PGlite } from '@electric-sql/pglite'
import { createIpc } from '@tidesync/ipc'
import { createTidesync, ensureSchema, noopLogger } from '@tidesync/server'
import { createWriteBuffer, type WriteBuffer } from '@tidesync/write-buffer'
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
let open: () => void = () => {}
let gate: Promise<void> | null = null
let reachedGate: () => void = () => {}
const atGate = new Promise<void>((resolve) => (reachedGate = resolve))
// The real buffer with the hand-over of an increment held at a gate (its tables' faces
// replaced; everything else, the deferred delivery included, is the real buffer's).
const gated: WriteBuffer = Object.assign(Object.create(buffer) as WriteBuffer, {
  table: (table: Parameters<WriteBuffer['table']>[0]) => {
    const real = buffer.table(table)
    return {
      where: (key: unknown) => {
        const row = real.where(key as never)
        return {
          increment: async (column: string, n?: number, options?: { receipt?: string }) => {
            if (gate) {
              reachedGate()
              await gate
            }
            return row.increment(column as never, n, options)
          },
          update: (fields: Record<string, unknown>) => row.update(fields as never),
          get: (column: string) => row.get(column as never),
        }
      },
      insert: (row: Record<string, unknown>) => real.insert(row as never),
      flush: () => real.flush(),
      redeliver: (items: never[]) => real.redeliver(items),
      claimReceipts: (tx: unknown, receipts: string[]) => real.claimReceipts(tx as never, receipts),
    }
  },
})
const tidesync = createTidesync({
  db,
  ipc,
  writeBuffer: gated,
  models: { items: { table: items, counters: ['likes'] } },
  logger: noopLogger,
})
const uid = '01900000-0000-7000-8000-000000000004'
let tick = Date.now()
const clock = () => `${new Date(tick++).toISOString()}-0000-client1`
const push = (id: string, change: Record<string, unknown>) =>
  tidesync.push({ clientId: 'writer', changes: [{ id, model: 'items', uid, clock: clock(), ...change }] }, {})

await push('c1', { op: 'create', data: { owner: 'a', title: 't' } })
const start = await tidesync.fullSync({ model: 'items', metadata: {} }, {})
gate = new Promise<void>((resolve) => (open = resolve))
const incrementing = push('c2', { op: 'increment', deltas: { likes: 1 } })
await atGate // committed; the delta waits to be handed over
let answered = false
const pulling = tidesync.pull({ model: 'items', checkpoint: start.checkpoint }, {}).finally(() => {
  answered = true
})
// The hand-over takes a while (well under the 5 s after which an in-flight mark expires).
await new Promise((resolve) => setTimeout(resolve, 300))
out(`pull answered before the hand-over: ${answered}`)
const waited = !answered
open()
const racing = await pulling
const seen = racing.upserts.find((u) => u.record.uid === uid)
out(`pull during the hand-over: likes=${seen?.record.likes} at rev ${seen?.meta.rev}`)
const applied = (await incrementing).outcomes[0] as {
  status: string
  meta?: { rev: number }
  record?: { likes?: number }
}
out(`the increment: ${applied.status}, likes=${applied.record?.likes} at rev ${applied.meta?.rev}`)
const next = await tidesync.pull({ model: 'items', checkpoint: racing.checkpoint }, {})
out(
  `next pull from the checkpoint it was given: ${next.upserts.length} upserts (nothing corrects likes=${seen?.record.likes})`,
)
const reproduced =
  !waited ||
  (seen !== undefined &&
    seen.meta.rev === applied.meta?.rev &&
    seen.record.likes !== applied.record?.likes &&
    next.upserts.length === 0)
out(
  reproduced
    ? 'BUG REPRODUCED: a pull returned the new revision with the old counter'
    : 'fixed: the pull waited for the hand-over and returned the new revision with its counter',
)
await buffer.close()
await ipc.close()
await pglite.close()
process.exit(reproduced ? 1 : 0)
