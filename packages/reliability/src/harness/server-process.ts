/**
 * A tidesync server as a real process: socket.io on 127.0.0.1, tidesync installed with the
 * write buffer, on PostgreSQL (node-postgres pool) and the IPC driver the test chose. Started by
 * `startServerProcess` (child_process.fork) or, for the cluster driver, as a node:cluster worker
 * of `cluster-primary.ts`. Configured by the RELIABILITY_SERVER env var (a `ServerConfig`).
 *
 * It answers the test's requests (stats, flush, close, arm a crash) over the process channel.
 * The only instrumentation is `instrumentIpc`, which watches (never changes) the IPC calls of the
 * write buffer so that an armed crash can happen at an exact point of a flush, and counts the
 * IPC calls and PostgreSQL queries (for capacity figures: round trips per change).
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { Session } from 'node:inspector/promises'
import type { AddressInfo } from 'node:net'
import { createIpc, type Ipc, type IpcOptions, type WithLockOptions } from '@tidesync/ipc'
import { ensureSchema, installTidesync, type Logger } from '@tidesync/server'
import { createWriteBuffer } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { Server } from 'socket.io'
import { isRel, type Report, type Request, type ServerConfig, type ServerStats } from './messages.js'
import { ITEMS_DDL, items } from './schema.js'

const config = JSON.parse(process.env.RELIABILITY_SERVER ?? 'null') as ServerConfig | null
if (!config) throw new Error('RELIABILITY_SERVER is not set')

const send = (message: Report) => process.send?.(message)

const logs: string[] = []
let logCount = 0
const record =
  (level: string) =>
  (message: string, ...meta: unknown[]) => {
    logCount++
    if (logs.length < 50) {
      const detail = meta
        .map((m) => (m instanceof Error ? explain(m) : ''))
        .filter(Boolean)
        .join(' ')
      logs.push(`${new Date().toISOString()} ${level} ${message} ${detail}`.trim())
    }
  }
const logger: Logger = { debug() {}, info() {}, warn: record('warn'), error: record('error') }

process.on('unhandledRejection', (error) => record('unhandledRejection')(String(error), error))

/**
 * RELIABILITY_CPU_PROFILE_DIR (capacity runs, `--profile`): a V8 CPU profile of this process
 * from start-up to a graceful close, written there as `<name>-<pid>.cpuprofile`. (`--cpu-prof`
 * is not allowed in NODE_OPTIONS, so the inspector does it.)
 */
async function startProfile(): Promise<(() => Promise<void>) | null> {
  const dir = process.env.RELIABILITY_CPU_PROFILE_DIR
  if (!dir) return null
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 500 })
  await session.post('Profiler.start')
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(`${dir}/${config?.name ?? 'server'}-${process.pid}.cpuprofile`, JSON.stringify(profile))
    session.disconnect()
  }
}

/** IPC calls by method, and queries sent to PostgreSQL, since start-up. */
const ipcCalls: Record<string, number> = {}
let pgQueries = 0

/** Armed crash points (see `Request` 'arm'). */
let crashInFlush = false

/**
 * Watches the write buffer's IPC calls. While a flush holds its lock (`withLock` on a
 * `wb:lock:` key) and the flush deletes its in-flight keys (after its database commit), an
 * armed crash SIGKILLs this process: it dies holding the lock, with the batch committed but
 * still in flight.
 */
function instrumentIpc(ipc: Ipc): Ipc {
  let flushLocks = 0
  return new Proxy(ipc, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (typeof property === 'string' && property !== 'close')
        ipcCalls[property] = (ipcCalls[property] ?? 0) + 1
      if (property === 'withLock') {
        return (key: string, ttl: number, fn: () => unknown, options?: WithLockOptions) => {
          if (!key.startsWith('wb:lock:')) return target.withLock(key, ttl, fn, options)
          return target.withLock(
            key,
            ttl,
            async () => {
              flushLocks++
              try {
                return await fn()
              } finally {
                flushLocks--
              }
            },
            options,
          )
        }
      }
      if (property === 'del') {
        return (...keys: string[]) => {
          if (crashInFlush && flushLocks > 0 && keys.some((key) => key.startsWith('wb:F:'))) {
            process.kill(process.pid, 'SIGKILL')
          }
          return target.del(...keys)
        }
      }
      return value.bind(target)
    },
  })
}

async function main(cfg: ServerConfig): Promise<void> {
  const stopProfile = await startProfile()
  const pool = new pg.Pool({
    connectionString: cfg.databaseUrl,
    max: cfg.poolSize ?? 8,
    connectionTimeoutMillis: cfg.pgConnectTimeoutMs ?? 3000,
  })
  // No 'error' listeners of our own on the pool: createWriteBuffer and installTidesync attach
  // them (a lost connection must not end the process; see finding 6 in docs/reliability.md).
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    ;(client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      pgQueries++
      return query(...args)
    }
  })
  const db = drizzle(pool)
  // Every server runs ensureSchema at start-up, also while the others take writes (finding 1).
  await ensureSchema(db)
  await db.execute(sql.raw(ITEMS_DDL))

  const rawIpc = await createIpc({ ...cfg.ipc, logger } as IpcOptions)
  const ipc = instrumentIpc(rawIpc)
  let flushes = 0
  let lastFlushAt = 0
  let lastCheckpointStartAt = 0
  let pendingCheckpointStart = 0
  let bufferErrors = 0
  const buffer = createWriteBuffer({
    ipc,
    databases: { default: db },
    tables: [items],
    flushInterval: cfg.writeBuffer.flushInterval,
    maxBackoffMs: cfg.writeBuffer.maxBackoffMs,
    checkpointPath: cfg.writeBuffer.checkpointPath,
    checkpointInterval: cfg.writeBuffer.checkpointInterval ?? 30_000,
    durability: cfg.writeBuffer.durability ?? 'checkpoint',
    handleSignals: false,
    lockWaitMs: 20_000,
    lockTtlSeconds: cfg.writeBuffer.lockTtlSeconds,
    logger,
    onError: (error) => {
      bufferErrors++
      record('buffer')(`${error.code}: ${error.message}`)
    },
  })
  buffer.on('flush', () => {
    flushes++
    lastFlushAt = Date.now()
  })
  buffer.on('checkpointStart', () => {
    pendingCheckpointStart = Date.now()
  })
  buffer.on('checkpoint', () => {
    lastCheckpointStartAt = pendingCheckpointStart
  })
  await buffer.ready

  const http = createServer()
  const maxHttpBufferSize = cfg.maxHttpBufferSize ?? 1e6
  const io = new Server(http, { maxHttpBufferSize, transports: ['websocket'] })
  let serverDisconnects = 0
  io.on('connection', (socket) => {
    socket.on('disconnect', (reason) => {
      if (reason === 'server namespace disconnect') serverDisconnects++
    })
  })
  const tidesync = await installTidesync(io, {
    db,
    ipc,
    writeBuffer: buffer,
    models: { items: { table: items, counters: ['likes'], ...(cfg.scoped ? { scope: itemsScope } : {}) } },
    ...(cfg.scoped ? { authenticate: scopedUser } : {}),
    logger,
    maxMessageBytes: cfg.maxMessageBytes,
    maxChangesPerTransaction: cfg.maxChangesPerTransaction,
    syncLockWaitMs: cfg.syncLockWaitMs,
    syncLockTtlSeconds: cfg.syncLockTtlSeconds,
  })
  await new Promise<void>((resolve) => http.listen(cfg.port, '127.0.0.1', resolve))
  const port = (http.address() as AddressInfo).port

  /** Counts what the buffer holds in the store: hash fields and list items under P: and F:. */
  const pendingWrites = async (): Promise<number> => {
    let total = 0
    for (const key of [...(await rawIpc.keys('wb:P:')), ...(await rawIpc.keys('wb:F:'))]) {
      const type = await rawIpc.type(key)
      if (type === 'hash') total += Object.keys(await rawIpc.hgetall(key)).length
      else if (type === 'list') total += await rawIpc.llen(key)
    }
    return total
  }

  const stats = async (gc: boolean): Promise<ServerStats> => {
    if (gc) (globalThis as { gc?: () => void }).gc?.()
    const memory = process.memoryUsage()
    return {
      pid: process.pid,
      heapUsed: memory.heapUsed,
      rss: memory.rss,
      flushes,
      lastFlushAt,
      lastCheckpointStartAt,
      bufferErrors,
      logs: [...logs],
      logCount,
      pendingWrites: await pendingWrites().catch(() => -1),
      sockets: io.of('/').sockets.size,
      serverDisconnects,
      subscriptions: tidesync.subscriptionCount,
      requestsRunning: tidesync.requests.running,
      requestsQueued: tidesync.requests.queued,
      pgQueries,
      ipcCalls: { ...ipcCalls },
    }
  }

  const close = async () => {
    await tidesync.close()
    io.disconnectSockets(true)
    await new Promise<void>((resolve) => io.close(() => resolve()))
    await buffer.close().catch((error) => record('close')(`final flush failed: ${(error as Error).message}`))
    await rawIpc.close()
    await pool.end()
    await stopProfile?.()
  }

  /**
   * Counter deltas a killed server committed but did not hand to the buffer are handed over by
   * the next reader of the record or by a sweep, once they are 5 s old: before the final flush,
   * wait for every one to be handed over (at most 15 s).
   */
  const recoverOwed = async () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      await tidesync.recoverHandOffs()
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tidesync_handoffs')
      if (rows[0]?.n === 0) return
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    throw new Error('counter deltas owed by a stopped server were not handed over within 15 s')
  }

  process.on('message', (message: unknown) => {
    if (!isRel(message)) return
    const request = message as Request
    const reply = (result: unknown, error?: unknown) =>
      send({
        rel: true,
        type: 'reply',
        id: request.id,
        result,
        error: error === undefined ? undefined : String((error as Error)?.message ?? error),
      })
    const run = async (): Promise<unknown> => {
      switch (request.type) {
        case 'stats':
          return stats(request.gc === true)
        case 'flush':
          await recoverOwed()
          await buffer.flush()
          return await stats(false)
        case 'arm':
          crashInFlush = true
          return null
        case 'close':
          await close()
          return null
      }
    }
    run().then(
      (result) => {
        reply(result)
        if (request.type === 'close') setImmediate(() => process.exit(0))
      },
      (error) => reply(null, error),
    )
  })
  send({ rel: true, type: 'ready', port, pid: process.pid })
}

/** Who a socket is when the server is `scoped` (see `ServerConfig.scoped`). */
type ScopedUser = { role: 'real' } | { user: string; group: string }

function scopedUser(handshake: { auth: Record<string, unknown> }): ScopedUser | null {
  const { user, group, role } = handshake.auth ?? {}
  if (role === 'real') return { role: 'real' }
  if (typeof user !== 'string' || user === '') return null
  return { user, group: typeof group === 'string' && group !== '' ? group : user }
}

/** The simulated clients own `c<n>` records; every other user sees its own and its group's. */
function itemsScope(ctx: ScopedUser) {
  return 'role' in ctx ? { owner: { gte: 'c', lt: 'd' } } : { owner: { in: [ctx.user, ctx.group] } }
}

/** An error and its causes, one per line. */
function explain(error: unknown): string {
  const lines: string[] = []
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const e = current as Error & { code?: string }
    lines.push(`${e.name}: ${e.message}${e.code ? ` [${e.code}]` : ''}`)
    current = e.cause
  }
  return lines.join('\n  caused by ')
}

main(config).catch((error: Error) => {
  send({ rel: true, type: 'fatal', error: `${explain(error)}\n${error.stack ?? ''}` })
  setTimeout(() => process.exit(1), 50)
})
