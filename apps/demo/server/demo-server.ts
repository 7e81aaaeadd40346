import { randomBytes } from 'node:crypto'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { type Handshake, installTidesync, type Logger, type TidesyncServer } from '@tidesync/server'
import { createWriteBuffer, type WriteBuffer } from '@tidesync/write-buffer'
import { Server, type Socket } from 'socket.io'
import {
  cleanName,
  type DemoClientEvents,
  type DemoServerEvents,
  type PresenceEntry,
  type ServerInfo,
} from '../shared/events.js'
import { activity, counters, notes } from '../shared/schema.js'
import { ActivityLog } from './activity.js'
import { type DemoDatabase, openDatabase } from './database.js'
import { Presence } from './presence.js'
import { withSqlRoute } from './sql-route.js'
import { staticFiles } from './static-files.js'

/** What `authenticate` makes of a window's handshake: the person's display name. */
export interface DemoUser extends Record<string, unknown> {
  name: string
}

export interface DemoServerOptions {
  /** The port; 0 picks a free one. @default 3000 */
  port?: number
  /** The interface to listen on. @default '127.0.0.1' */
  host?: string
  /** A PostgreSQL URL. @default undefined (PGlite in `dataDir`) */
  databaseUrl?: string
  /** A Redis URL for the IPC layer. @default undefined (the in-process memory driver) */
  redisUrl?: string
  /** Prefix of the demo's Redis keys; servers that share data use the same one. @default 'tidesync-demo:' */
  redisPrefix?: string
  /**
   * The folder of PGlite's database and of the write buffer's LMDB checkpoint; `memory` keeps
   * everything in memory (nothing survives a restart).
   * @default apps/demo/.data
   */
  dataDir?: string
  /** The built app. @default apps/demo/dist */
  staticDir?: string
  /** How often the write buffer writes counters and activity rows to the database, in ms. @default 2000 */
  flushIntervalMs?: number
  /** A name for this server in the presence list. @default 4 random hex characters */
  serverId?: string
  /**
   * Where the demo and the tidesync packages it starts log.
   * @default each its own console logger (warnings and errors, prefixed `[tidesync/demo]`,
   * `[tidesync/server]`, ...; the demo's also `info`, the request trace, when `trace` is on)
   */
  logger?: Logger
  /** Log every socket request with its answer time, at `info` (`DEMO_TRACE=1`). @default false */
  trace?: boolean
  /**
   * Serve `POST /demo/sql`: one plain SQL statement on the demo's database, from this machine
   * only, for `npm run demo:sql` (server/sql-route.ts). A demo tool, never for a production
   * server; `DEMO_SQL=0` turns it off.
   * @default true
   */
  sqlRoute?: boolean
}

export interface DemoServer {
  url: string
  port: number
  serverId: string
  database: DemoDatabase
  ipc: Ipc
  writeBuffer: WriteBuffer
  tidesync: TidesyncServer<DemoUser>
  /** Flushes the write buffer and closes everything this server opened. */
  close(): Promise<void>
}

/**
 * The demo's own default logger: warnings and errors to the console, and `info` (the request
 * trace) too when `trace` is on. The prefix is added here; messages never carry one.
 */
function demoConsoleLogger(trace = false): Logger {
  const prefix = '[tidesync/demo]'
  return {
    debug() {},
    info: trace ? (message, ...meta) => console.info(`${prefix} ${message}`, ...meta) : () => {},
    warn: (message, ...meta) => console.warn(`${prefix} ${message}`, ...meta),
    error: (message, ...meta) => console.error(`${prefix} ${message}`, ...meta),
  }
}

export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../.data', import.meta.url))
export const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../dist', import.meta.url))

/**
 * Starts the demo: PGlite or PostgreSQL, the memory or Redis IPC driver, the write buffer,
 * tidesync on a socket.io server, presence and the activity feed, the built app and the
 * local-only SQL route (`sqlRoute`), all on one port. Everything is closed again by `close()`,
 * also when start-up fails half-way.
 */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const serverId = options.serverId ?? randomBytes(2).toString('hex')
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR
  // The packages get `options.logger` as given, so that without one each uses its own default.
  const log = options.logger ?? demoConsoleLogger(options.trace)
  const cleanup: Array<() => Promise<unknown>> = []
  const closeAll = async () => {
    for (const step of cleanup.splice(0).reverse()) {
      await step().catch((error) => log.warn('closing the demo server', error))
    }
  }
  try {
    const database = await openDatabase({ databaseUrl: options.databaseUrl, dataDir })
    cleanup.push(() => database.close())

    const ipc = options.redisUrl
      ? await createIpc({
          driver: 'redis',
          url: options.redisUrl,
          keyPrefix: options.redisPrefix ?? 'tidesync-demo:',
          logger: options.logger,
        })
      : await createIpc({ driver: 'memory', logger: options.logger })
    cleanup.push(() => ipc.close())

    const writeBuffer = createWriteBuffer({
      ipc,
      databases: { default: database.db },
      tables: [notes, activity],
      flushInterval: options.flushIntervalMs ?? 2000,
      // LMDB checkpoints of pending state (memory driver only: Redis keeps the state itself).
      checkpointPath: dataDir === 'memory' ? false : `${dataDir}/write-buffer`,
      // The demo's own shutdown flushes the buffer before it closes the database.
      handleSignals: false,
      logger: options.logger,
    })
    cleanup.push(() => writeBuffer.close())
    await writeBuffer.ready

    const serveApp = staticFiles(options.staticDir ?? DEFAULT_STATIC_DIR)
    const http: HttpServer = createServer(
      options.sqlRoute === false ? serveApp : withSqlRoute(database, log, serveApp),
    )
    const io = new Server<DemoClientEvents, DemoServerEvents>(http, {
      // A full reconcile of 10,000 local records is a message of about 1.5 MB.
      maxHttpBufferSize: 16e6,
      // Notice a silently dropped connection within 15 s.
      pingInterval: 10_000,
      pingTimeout: 5_000,
    })
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          io.disconnectSockets(true)
          io.close(() => resolve())
        }),
    )

    const presence = new Presence({
      ipc,
      serverId,
      onChange: (online) => io.emit('demo:presence', online),
    })
    await presence.start()
    cleanup.push(() => presence.close())

    const activityLog = new ActivityLog({
      ipc,
      db: database.db,
      writeBuffer,
      onEntries: (entries) => io.emit('demo:activity', entries),
    })
    await activityLog.start()
    cleanup.push(() => activityLog.close())

    const users = new WeakMap<Handshake, DemoUser>()
    const ACTIONS = { create: 'created', update: 'edited', delete: 'deleted', increment: 'liked' } as const
    const tidesync = await installTidesync<DemoUser>(io as unknown as Server, {
      db: database.db,
      ipc,
      writeBuffer,
      nodeId: serverId,
      logger: options.logger,
      models: {
        notes: {
          table: notes,
          counters: counters.notes,
          // The write check runs for every write the server accepts: the demo logs it as activity.
          canWrite: async (user, record, check) => {
            try {
              await activityLog.record(user.name, ACTIONS[check.op], {
                uid: record.uid,
                title: String(record.title ?? ''),
              })
            } catch (error) {
              log.warn('could not record activity', error)
            }
            return true
          },
        },
      },
      authenticate: (handshake) => {
        const user: DemoUser = { name: cleanName((handshake.auth as { name?: unknown } | undefined)?.name) }
        users.set(handshake, user)
        return user
      },
    })
    cleanup.push(() => tidesync.close())

    const info: ServerInfo = {
      server: serverId,
      database: database.kind,
      coordinator: ipc.driver === 'redis' ? 'redis' : 'memory',
    }
    io.on('connection', (socket) => {
      if (options.trace) traceRequests(socket, serverId, log)
      const user = users.get(socket.handshake) ?? { name: 'Someone' }
      let entry: PresenceEntry = { id: `${serverId}:${socket.id}`, name: user.name, server: serverId }
      const warn = (error: unknown) => log.warn('presence update failed', error)
      socket.emit('demo:info', info)
      presence.join(entry).catch(warn)
      socket.on('demo:recent-activity', (ack) => {
        if (typeof ack !== 'function') return
        activityLog.recent().then(ack, () => ack([]))
      })
      socket.on('demo:rename', (raw) => {
        const previous = entry
        user.name = cleanName(raw)
        entry = { ...entry, name: user.name }
        presence
          .leave(previous)
          .then(() => presence.join(entry))
          .catch(warn)
      })
      socket.on('disconnect', () => {
        presence.leave(entry).catch(warn)
      })
    })

    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(options.port ?? 3000, options.host ?? '127.0.0.1', () => {
        http.off('error', reject)
        resolve()
      })
    })
    const { port } = http.address() as AddressInfo
    const host =
      options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1'
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      port,
      serverId,
      database,
      ipc,
      writeBuffer,
      tidesync,
      close: closeAll,
    }
  } catch (error) {
    await closeAll()
    throw error
  }
}

/** Logs, at `info`, each request a socket sends and how long its answer took. */
function traceRequests(socket: Socket, serverId: string, log: Logger): void {
  const tag = `socket ${serverId}:${socket.id.slice(0, 6)}`
  log.info(`${tag} connected (${socket.conn.transport.name})`)
  socket.use((packet, next) => {
    const started = Date.now()
    const event = String(packet[0])
    const ack = packet[packet.length - 1]
    if (typeof ack === 'function') {
      packet[packet.length - 1] = (reply: { error?: { code: string } }) => {
        const outcome = reply?.error ? `error ${reply.error.code}` : 'ok'
        log.info(`${tag} ${event}: ${outcome} in ${Date.now() - started} ms`)
        ack(reply)
      }
    } else log.info(`${tag} ${event}`)
    next()
  })
  socket.on('disconnect', (reason) => log.info(`${tag} disconnected: ${reason}`))
}
