/**
 * The child of crash.test.ts: one process with a write buffer on the memory IPC driver (its
 * pending state dies with it) and the real PostgreSQL server, killed with SIGKILL by the test.
 *
 * CALLERS callers run sequentially each, pausing for a timer turn between ops (op k of caller c starts when op k-1 was acknowledged):
 * op k is an insert of `{ op: "round:c:k" }` when k % 4 == 3, else `increment` of row c by 1.
 * Every op is logged to LOG_FILE with a synchronous write() before it is called (`i`) and after
 * its call resolved (`a`), so the log survives the kill: an `a` line is an acknowledged write,
 * an `i` line without `a` an op in flight at the kill. Checkpoints log `S` (started: every op
 * acknowledged before it is in it) and `C` (written to disk).
 *
 * KILL_POINT tells where the test kills: 'random' (the test picks the moment), 'mid-commit'
 * (inside a flush transaction, after the batch id is recorded: the child says `at` and stalls
 * the transaction), 'post-commit' (after the commit, before the in-flight state is cleared: the
 * child says `at` and stalls), 'drain' (no traffic: recover, flush, close, exit 0).
 */
import { openSync, writeSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { openWriteBuffer } from '../../write-buffer.js'
import { crashCounters, crashEvents } from './crash-schema.js'

const env = (name: string) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const DATABASE_URL = env('DATABASE_URL')
const MODE = env('MODE') as 'journal' | 'checkpoint'
const DIR = env('DIR')
const ROUND = Number(env('ROUND'))
const KILL_POINT = env('KILL_POINT') as 'random' | 'mid-commit' | 'post-commit' | 'drain'
const CALLERS = Number(env('CALLERS'))
/** The stall points arm once this many ops were acknowledged in this round. */
const ARM_AFTER = 150

const log = openSync(env('LOG_FILE'), 'a')
const line = (text: string) => writeSync(log, `${text}\n`)
const send = (message: Record<string, unknown>) => process.send?.(message)
const forever = () => new Promise<never>(() => {})

let acked = 0
let fired = false
const armed = (point: string) => KILL_POINT === point && !fired && acked >= ARM_AFTER
const fire = (point: string) => {
  fired = true
  send({ type: 'at', point })
}

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
pool.on('connect', (client) => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const config = args[0]
    const text = typeof config === 'string' ? config : (config as { text?: string } | undefined)?.text
    const result = query(...args)
    if (
      armed('mid-commit') &&
      typeof args[args.length - 1] !== 'function' &&
      text?.startsWith('insert into tidesync_write_buffer_batches') &&
      result instanceof Promise
    ) {
      // The flush transaction has recorded its batch ids; stall it open until the kill.
      return result.then(() => {
        fire('mid-commit')
        return forever()
      })
    }
    return result
  }
})

/** The memory IPC, with the delete of committed in-flight keys stalled at 'post-commit'. */
function stallPostCommit(ipc: Ipc): Ipc {
  return new Proxy(ipc, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (property !== 'del') return value.bind(target)
      return (...keys: string[]) => {
        if (armed('post-commit') && keys.some((key) => key.includes(':F:'))) {
          fire('post-commit')
          return forever()
        }
        return value.apply(target, keys)
      }
    },
  })
}

async function main(): Promise<void> {
  const ipc = stallPostCommit(await createIpc({ driver: 'memory' }))
  const buffer = await openWriteBuffer({
    ipc,
    databases: { default: drizzle(pool) },
    durability: MODE,
    checkpointPath: DIR,
    tables: [crashCounters, crashEvents],
    flushInterval: 40,
    checkpointInterval: 120,
    handleSignals: false,
    onError: (error) => process.stderr.write(`write-buffer error: ${error.code} ${error.message}\n`),
  })
  buffer.on('checkpointStart', () => line(`S ${ROUND}`))
  buffer.on('checkpoint', () => line(`C ${ROUND}`))
  line(`R ${ROUND}`)
  if (KILL_POINT === 'drain') {
    await buffer.close()
    await pool.end()
    await ipc.close()
    send({ type: 'drained' })
    return
  }
  send({ type: 'ready' })
  const counters = buffer.table(crashCounters)
  const events = buffer.table(crashEvents)
  const caller = async (c: number) => {
    for (let k = 0; ; k++) {
      line(`i ${ROUND} ${c} ${k}`)
      if (k % 4 === 3) await events.insert({ op: `${ROUND}:${c}:${k}` })
      else await counters.where(c).increment('n')
      line(`a ${ROUND} ${c} ${k}`)
      acked++
      // Like requests arriving over I/O: the memory IPC answers on microtasks, so callers that
      // never wait for I/O would keep the event loop (and the buffer's timers) from running.
      await sleep(0)
    }
  }
  await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i + 1)))
}

main().catch((error: unknown) => {
  line(`x ${ROUND} ${String(error).replace(/\s+/g, ' ')}`)
  send({ type: 'failed', error: String((error as Error)?.stack ?? error) })
  process.exitCode = 1
  setTimeout(() => process.exit(1), 100)
})
