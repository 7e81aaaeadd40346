import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { createTestDatabase, redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { io as connect } from 'socket.io-client'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChangesPush, FullSyncResult, PullResult, PushResult, Reply } from '../protocol.js'
import type { TidesyncDb } from '../types.js'
import { clientClock } from './fixtures/clock.js'
import { todosDdl } from './fixtures/schema.js'
import type { TestClient } from './fixtures/socket-server.js'
import { TRACE_KEY } from './fixtures/trace-key.js'

const hasRedis = await requireServer('redis')
const hasPostgres = await requireServer('postgres')

const WORKER = fileURLToPath(new URL('./fixtures/server-process.ts', import.meta.url))

interface Worker {
  name: string
  child: ChildProcess
  url: string
}

function startWorker(name: string, env: Record<string, string>): Promise<Worker> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx', '--conditions=source'],
    env: { ...process.env, ...env, SERVER_NAME: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code} before it was ready`))
    })
    child.on('message', (message: { type?: string; url?: string }) => {
      if (message?.type !== 'ready') return
      clearTimeout(timer)
      resolve({ name, child, url: message.url! })
    })
  })
}

/** Asks a worker to stop, and kills it (by its pid) if it has not exited in 10 s. */
async function stopWorker(worker: Worker): Promise<void> {
  const { child } = worker
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.send('close')
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
  }, 10_000)
  await exited
  clearTimeout(timer)
}

function request<T>(socket: TestClient, event: string, payload: unknown): Promise<Reply<T>> {
  return (
    socket.timeout(30_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<Reply<T>> }
  ).emitWithAck(event, payload)
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

type TraceEvent = [kind: 'enter' | 'exit', lockKey: string, id: string]

describe.runIf(hasRedis && hasPostgres)('two server processes sharing Redis and PostgreSQL', () => {
  const keyPrefix = `${uniqueId('srv')}:`
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined
  let ipc: Ipc | undefined
  const workers: Worker[] = []
  const sockets: TestClient[] = []
  let db: TidesyncDb
  let pool: pg.Pool | undefined

  const client = async (worker: Worker, token: string): Promise<TestClient> => {
    const socket: TestClient = connect(worker.url, {
      auth: { token },
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    })
    sockets.push(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('connect_error', reject)
    })
    return socket
  }

  beforeAll(async () => {
    database = await createTestDatabase('tidesync_multi')
    pool = new pg.Pool({ connectionString: database.url, max: 2 })
    db = drizzle(pool) as unknown as TidesyncDb
    // The metadata tables (ensureSchema) and change capture (installTidesync) are set up by the
    // two servers, both at once.
    await db.execute(sql.raw(todosDdl))
    ipc = await createIpc({ driver: 'redis', url: redisUrl, keyPrefix })
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl, KEY_PREFIX: keyPrefix, HOLD_MS: '30' }
    workers.push(...(await Promise.all([startWorker('A', env), startWorker('B', env)])))
    const tables = await db.execute(
      sql`SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'tidesync_%'`,
    )
    // Five metadata tables, and change capture's two staging tables (installTidesync sets it up).
    expect((tables as unknown as { rows: Array<{ n: number }> }).rows[0]!.n).toBe(7)
  }, 120_000)

  afterAll(async () => {
    for (const socket of sockets) socket.disconnect()
    await Promise.all(workers.map(stopWorker))
    if (ipc) {
      const keys = await ipc.keys('')
      if (keys.length > 0) await ipc.del(...keys)
      await ipc.close()
    }
    await pool?.end()
    await database?.drop()
  }, 60_000)

  it('a change made through one server reaches a socket on the other live, scoped per user', async () => {
    const [a, b] = workers as [Worker, Worker]
    const aliceOnA = await client(a, 'alice')
    const aliceOnB = await client(b, 'alice')
    const bobOnB = await client(b, 'bob')
    const seen = new Map<TestClient, ChangesPush[]>()
    for (const socket of [aliceOnA, aliceOnB, bobOnB]) {
      const pushes: ChangesPush[] = []
      socket.on('changes', (push) => pushes.push(push))
      seen.set(socket, pushes)
      expect((await request(socket, 'subscribe', { model: 'todos' })).error).toBeUndefined()
    }
    const uid = uuidv7()
    const pushed = await request<PushResult>(aliceOnA, 'sync:push', {
      clientId: 'alice-laptop',
      changes: [
        {
          id: '1',
          model: 'todos',
          uid,
          op: 'create',
          data: { ownerId: 'alice', title: 'across servers' },
          clock: clientClock(Date.now(), 'laptop'),
        },
      ],
    })
    expect(pushed.result?.outcomes[0]?.status).toBe('applied')
    await until(() => seen.get(aliceOnB)!.length > 0, 'the push on server B')
    expect(seen.get(aliceOnB)![0]!.upserts[0]!.record).toMatchObject({ uid, title: 'across servers' })

    // And back: an update through B reaches the socket on A.
    await request(aliceOnB, 'service', {
      model: 'todos',
      method: 'update',
      args: { uid, patch: { done: true } },
    })
    await until(
      () => seen.get(aliceOnA)!.some((p) => p.upserts.some((u) => u.record.done === true)),
      'the push on server A',
    )

    // Bob's own change is a barrier: once it reached him, Alice's would have too.
    const bobsUid = uuidv7()
    await request(bobOnB, 'service', {
      model: 'todos',
      method: 'create',
      args: { uid: bobsUid, data: { ownerId: 'bob', title: 'bob only' } },
    })
    await until(() => seen.get(bobOnB)!.length > 0, "Bob's push")
    expect(JSON.stringify(seen.get(bobOnB))).not.toContain(uid)
    expect(seen.get(bobOnB)!.flatMap((p) => p.upserts.map((u) => u.record.uid))).toEqual([bobsUid])
  })

  it('concurrent syncs of one model+where on both servers never interleave', async () => {
    const [a, b] = workers as [Worker, Worker]
    const onA = await client(a, 'alice')
    const onB = await client(b, 'alice')
    for (let i = 0; i < 5; i++) {
      await request(onA, 'service', {
        model: 'todos',
        method: 'create',
        args: { data: { ownerId: 'alice', title: `sync ${i}`, priority: i } },
      })
    }
    await ipc!.del(TRACE_KEY)

    // The same model+where (and user, so the same scope) from both servers at once.
    const where = { done: false }
    const calls: Array<Promise<Reply<FullSyncResult | PullResult>>> = []
    for (const socket of [onA, onB]) {
      for (let i = 0; i < 6; i++)
        calls.push(request(socket, 'sync:full', { model: 'todos', where, metadata: {} }))
      for (let i = 0; i < 2; i++)
        calls.push(request(socket, 'sync:pull', { model: 'todos', where, checkpoint: 'r:0' }))
    }
    const replies = await Promise.all(calls)
    for (const reply of replies) expect(reply.error).toBeUndefined()

    const trace = (await ipc!.lrange<TraceEvent>(TRACE_KEY, 0, -1)) as TraceEvent[]
    expect(trace).toHaveLength(2 * calls.length)
    expect(new Set(trace.map(([, key]) => key)).size).toBe(1)
    // Strictly enter, exit, enter, exit... each exit closing the sync that entered just before.
    trace.forEach(([kind, , id], i) => {
      expect(kind).toBe(i % 2 === 0 ? 'enter' : 'exit')
      if (kind === 'exit') expect(id).toBe(trace[i - 1]![2])
    })
    const servers = new Set(trace.map(([, , id]) => id.split('#')[0]))
    expect(servers).toEqual(new Set(['A', 'B']))

    // Control: syncs of different wheres are not serialised, and the trace shows their overlap.
    await ipc!.del(TRACE_KEY)
    const free = [onA, onB].flatMap((socket, s) =>
      [0, 1, 2].map((i) =>
        request(socket, 'sync:full', { model: 'todos', where: { priority: s * 3 + i }, metadata: {} }),
      ),
    )
    for (const reply of await Promise.all(free)) expect(reply.error).toBeUndefined()
    const control = (await ipc!.lrange<TraceEvent>(TRACE_KEY, 0, -1)) as TraceEvent[]
    expect(control).toHaveLength(12)
    let open = 0
    let maxOpen = 0
    for (const [kind] of control) {
      open += kind === 'enter' ? 1 : -1
      maxOpen = Math.max(maxOpen, open)
    }
    expect(maxOpen).toBeGreaterThan(1)
  })
})
