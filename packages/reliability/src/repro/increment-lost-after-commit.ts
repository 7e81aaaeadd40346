/**
 * Repro: an acknowledged counter increment is lost when the server cannot hand its delta to
 * the write buffer (the IPC store is briefly unreachable: a Redis restart, a cluster primary
 * timeout), although the client is told the change was applied.
 *
 * Why: with a write buffer, `commitChanges` (packages/server/src/write/commit.ts) commits the
 * change (its id in tidesync_applied, its revision) and only then calls
 * `afterCommitIncrement`, which hands the delta to the buffer. When that throws, the push
 * answers UNAVAILABLE; the client retries the same change id; the server finds the id in
 * tidesync_applied and answers 'duplicate'. The client drops the change as done, yet the
 * delta never reached the buffer: the counter is short by it, for good.
 *
 * The fault is injected in front of the real IPC store, only for the buffer's `hincrBy`, as an
 * `IpcUnavailableError` (what the Redis driver throws past `commandTimeoutMs`).
 *
 * Fixed: when the buffer refuses a hand-off after the commit, the server writes what it did not
 * take straight to the table (`UPDATE ... SET likes = likes + 5`, retried with a short backoff)
 * while the record's hand-off mark is still in flight, then answers `applied`. Only a process
 * crash between the commit and the hand-off can still lose it (README caveat).
 *
 * Run: npx tsx --conditions=source src/repro/increment-lost-after-commit.ts   (no servers needed)
 * Exit code 1 = bug reproduced, 0 = fixed.
 */
import { PGlite } from '@electric-sql/pglite'
import { createIpc, type Ipc, IpcUnavailableError } from '@tidesync/ipc'
import { createTidesync, ensureSchema, noopLogger } from '@tidesync/server'
import { createWriteBuffer } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/pglite'
import { ITEMS_DDL, items } from '../harness/schema.js'

const out = (line: string) => process.stdout.write(`${line}\n`)

/** The real store; `hincrBy` fails once, before running, when `failNext` is set. */
function flaky(ipc: Ipc, state: { failNext: boolean }): Ipc {
  return new Proxy(ipc, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (property !== 'hincrBy') return value.bind(target)
      return (...args: unknown[]) => {
        if (state.failNext) {
          state.failNext = false
          throw new IpcUnavailableError('injected: the IPC store is unreachable', false)
        }
        return value.apply(target, args)
      }
    },
  })
}

const pglite = new PGlite()
const db = drizzle(pglite)
await ensureSchema(db)
await db.execute(sql.raw(ITEMS_DDL))
const ipc = await createIpc({ driver: 'memory' })
const fault = { failNext: false }
const buffer = createWriteBuffer({
  ipc: flaky(ipc, fault),
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
const uid = '01900000-0000-7000-8000-000000000001'
const clock = (ms: number) => `${new Date(ms).toISOString()}-0000-client1`
const push = (changes: unknown[]) => tidesync.handle('sync:push', { clientId: 'client-1', changes }, {})

await push([
  { id: 'c1', model: 'items', uid, op: 'create', data: { owner: 'a', title: 't' }, clock: clock(Date.now()) },
])
const increment = {
  id: 'c2',
  model: 'items',
  uid,
  op: 'increment',
  deltas: { likes: 5 },
  clock: clock(Date.now() + 1),
}
fault.failNext = true
const first = await push([increment])
out(`first push:  ${JSON.stringify(first.error ?? first.result)}`)
const retry = await push([increment]) // what the client does after a retryable error
out(`retry push:  ${JSON.stringify((retry.result as { outcomes?: unknown })?.outcomes ?? retry.error)}`)
await buffer.flush()
const [row] = (await db.execute(sql`SELECT likes FROM items`)).rows as Array<{ likes: number }>
out(`likes in the database after a flush: ${row?.likes} (the client was told +5 was applied)`)
const reproduced = row?.likes !== 5
out(
  reproduced
    ? 'BUG REPRODUCED: an acknowledged increment was lost'
    : 'fixed: the refused hand-off was written to the table, the increment counts once',
)
await buffer.close()
await ipc.close()
await pglite.close()
process.exit(reproduced ? 1 : 0)
