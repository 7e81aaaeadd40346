import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { createIpc, type Ipc } from '@tidesync/ipc'
import type { ChangesPush } from '@tidesync/protocol'
import { ensureSchema, installTidesync, type TidesyncServer } from '@tidesync/server'
import { drizzle } from 'drizzle-orm/pglite'
import { Server } from 'socket.io'
import { notes, todos } from './schema.js'

const DDL = [
  `CREATE TABLE IF NOT EXISTS todos (
    uid uuid PRIMARY KEY,
    title text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    project_id text NOT NULL DEFAULT 'inbox',
    likes integer NOT NULL DEFAULT 0,
    due_at timestamp(3) with time zone,
    tags jsonb)`,
  `CREATE TABLE IF NOT EXISTS notes (uid uuid PRIMARY KEY, body text NOT NULL DEFAULT '')`,
]

export interface TestServer {
  url: string
  db: ReturnType<typeof drizzle>
  tidesync: TidesyncServer
  io: Server
  /** Every change id each client pushed, in the order the server received them. */
  pushedChangeIds: Map<string, string[]>
  /** Every request the server received (event and payload), oldest first. */
  requests: Array<{ event: string; payload: Record<string, unknown> }>
  /**
   * Fault injection in front of the real handlers: the next `count` requests of `event` get
   * this error answer (as a server under trouble would send) and never reach tidesync.
   */
  failNext(event: string, count: number, error: { code: string; message: string; retryable?: boolean }): void
  /**
   * Holds back the `sync:push` requests of one client in front of the real handlers, as a server
   * still busy with them would: they are received (see `requests`, `pushedChangeIds`) but reach
   * tidesync, and so get an answer, only after `release()`, which also stops holding. A request
   * whose connection dropped meanwhile is dropped by socket.io on release.
   */
  holdPushes(clientId: string): PushHold
  /** Delays every `sync:push` request of one client by `ms` before it reaches tidesync (0: none). */
  delayPushes(clientId: string, ms: number): void
  /**
   * Holds back the answers to the `event` requests (`sync:pull`, `sync:full`, ...) of the
   * sockets that authenticated with `auth: { token }`, as a slow network or a busy server would:
   * tidesync handles each request at once (its snapshot is read now), but the answer reaches the
   * client only after `release()`, which also stops holding. Live pushes are not held, so they
   * can overtake an answer, as they do in a real deployment.
   */
  holdAnswers(token: string, event: string): PushHold
  /**
   * Holds back the live pushes (`changes`) that `which` selects, sent to the sockets that
   * authenticated with `auth: { token }`; the others go at once. `release()` sends the held ones
   * in their order and stops holding. How a deployment delivers a change after a newer one: live
   * pushes go out as each commit finishes its work (hand-offs, publishing, other servers, the
   * capture reader), not in revision order.
   */
  holdLive(token: string, which: (push: ChangesPush) => boolean): PushHold
  close(): Promise<void>
}

export interface PushHold {
  /** How many pushes are held right now. */
  readonly held: number
  release(): void
}

/**
 * A real tidesync server on PGlite and the memory IPC driver, on a socket.io server on a random
 * port. `authenticate` accepts every socket but one with `auth: { token: 'bad' }`; the `todos` model has the `likes` counter; `notes`
 * refuses (FORBIDDEN) any write that leaves a note's body 'forbidden'.
 */
export async function startServer(options: { maxClockSkewMs?: number } = {}): Promise<TestServer> {
  const pglite = new PGlite()
  const db = drizzle(pglite)
  for (const statement of DDL) await pglite.exec(statement)
  await ensureSchema(db)
  const ipc: Ipc = await createIpc({ driver: 'memory' })
  const http = createServer()
  const io = new Server(http, { maxHttpBufferSize: 32e6 })
  const pushedChangeIds = new Map<string, string[]>()
  const requests: TestServer['requests'] = []
  const faults = new Map<
    string,
    { count: number; error: { code: string; message: string; retryable?: boolean } }
  >()
  const holds = new Map<string, Array<() => void>>()
  const delays = new Map<string, number>()
  const answerHolds = new Map<string, Array<() => void>>()
  const liveHolds = new Map<string, { which: (push: ChangesPush) => boolean; held: Array<() => void> }>()
  // Observes what reaches the server (not a mock: the real handlers run as well).
  io.on('connection', (socket) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token
    // Answers and live pushes go out through these, so that they can be held (see holdAnswers, holdLive).
    socket.use((packet, next) => {
      const held = typeof token === 'string' ? answerHolds.get(`${token}\u0000${packet[0]}`) : undefined
      const ack = packet[packet.length - 1]
      if (held && typeof ack === 'function') {
        packet[packet.length - 1] = (...reply: unknown[]) => {
          const current = answerHolds.get(`${token}\u0000${packet[0]}`)
          if (current) current.push(() => ack(...reply))
          else ack(...reply)
        }
      }
      next()
    })
    const emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => boolean
    ;(socket as unknown as { emit: typeof emit }).emit = (event: string, ...args: unknown[]) => {
      const hold = typeof token === 'string' ? liveHolds.get(token) : undefined
      if (event === 'changes' && hold?.which(args[0] as ChangesPush)) {
        hold.held.push(() => emit(event, ...args))
        return true
      }
      return emit(event, ...args)
    }
    socket.use(([event, payload], next) => {
      const clientId = (payload as { clientId?: unknown } | undefined)?.clientId
      if (event !== 'sync:push' || typeof clientId !== 'string') return next()
      const held = holds.get(clientId)
      if (held) return void held.push(next)
      const delay = delays.get(clientId) ?? 0
      if (delay > 0) setTimeout(next, delay)
      else next()
    })
    socket.use(([event, ...args], next) => {
      const fault = faults.get(event)
      if (!fault || fault.count <= 0) return next()
      fault.count -= 1
      const ack = args.at(-1)
      if (typeof ack === 'function') ack({ error: fault.error })
    })
    socket.onAny((event: string, payload: { clientId?: string; changes?: Array<{ id: string }> }) => {
      requests.push({ event, payload: payload as Record<string, unknown> })
      if (event !== 'sync:push' || !payload?.clientId || !Array.isArray(payload.changes)) return
      const ids = pushedChangeIds.get(payload.clientId) ?? []
      ids.push(...payload.changes.map((change) => change.id))
      pushedChangeIds.set(payload.clientId, ids)
    })
  })
  const tidesync = await installTidesync(io, {
    db,
    ipc,
    models: {
      todos: { table: todos, counters: ['likes'] },
      // A write check to test rejections with: a note may never read 'forbidden'.
      notes: { table: notes, canWrite: (_ctx, record) => record.body !== 'forbidden' },
    },
    // Every socket is welcome except one that presents the token 'bad' (to test refusals).
    authenticate: (handshake) =>
      handshake.auth?.token === 'bad' ? null : { token: handshake.auth?.token ?? null },
    maxMessageBytes: 16e6,
    maxClockSkewMs: options.maxClockSkewMs ?? 60_000,
    logger: {
      debug() {},
      info() {},
      warn() {},
      error: (message, ...meta) => console.error(message, ...meta),
    },
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    db,
    tidesync,
    io,
    pushedChangeIds,
    requests,
    failNext(event, count, error) {
      faults.set(event, { count, error })
    },
    holdPushes(clientId) {
      const held: Array<() => void> = []
      holds.set(clientId, held)
      return {
        get held() {
          return held.length
        },
        release() {
          if (holds.get(clientId) === held) holds.delete(clientId)
          for (const next of held.splice(0)) next()
        },
      }
    },
    delayPushes(clientId, ms) {
      delays.set(clientId, ms)
    },
    holdAnswers(token, event) {
      const key = `${token}\u0000${event}`
      const held: Array<() => void> = []
      answerHolds.set(key, held)
      return {
        get held() {
          return held.length
        },
        release() {
          if (answerHolds.get(key) === held) answerHolds.delete(key)
          for (const answer of held.splice(0)) answer()
        },
      }
    },
    holdLive(token, which) {
      const hold = { which, held: [] as Array<() => void> }
      liveHolds.set(token, hold)
      return {
        get held() {
          return hold.held.length
        },
        release() {
          if (liveHolds.get(token) === hold) liveHolds.delete(token)
          for (const send of hold.held.splice(0)) send()
        },
      }
    },
    async close() {
      await tidesync.close()
      io.disconnectSockets(true)
      await new Promise<void>((resolve) => io.close(() => resolve()))
      await ipc.close()
      await pglite.close()
    },
  }
}
