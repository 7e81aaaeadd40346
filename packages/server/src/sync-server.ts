import { KNOWN_EVENTS, type PushResult, REQUEST_EVENTS, type Reply, type WireError } from '@tidesync/protocol'
import type { Server, Socket } from 'socket.io'
import { authMiddleware, socketContext } from './auth/authenticate.js'
import { toTidesyncError } from './db/map-error.js'
import { TidesyncValidationError } from './errors.js'
import { socketSubscriptions } from './handlers/subscribe.js'
import { CaptureReader, type CaptureReaderOptions } from './live/capture-reader.js'
import { startFanout } from './live/fanout.js'
import { SubscriptionRegistry } from './live/subscriptions.js'
import type { TidesyncOptions } from './options.js'
import { PushSerializer } from './socket/push-serializer.js'
import {
  type RequestGauge,
  RequestLimiter,
  type RequestLimitOptions,
  resolveRequestLimits,
  tooManyRequests,
} from './socket/request-limiter.js'
import {
  isViolation,
  resolveViolationPolicy,
  tooManyViolations,
  ViolationCounter,
  type ViolationPolicyOptions,
} from './socket/violation-policy.js'
import { createTidesync, type Tidesync } from './tidesync.js'
import type { AuthContext } from './types.js'
import { jsonByteLength } from './validation/forbidden-keys.js'

export interface InstallOptions<TCtx> extends TidesyncOptions<TCtx>, RequestLimitOptions {
  /** The socket.io namespace to serve. @default '/' */
  namespace?: string
  /**
   * Disconnects a socket that keeps sending invalid requests: each request answered with a
   * boundary error (malformed, unknown model, method or column, wrong type or date, forbidden
   * key, too large), each request past the socket's queue (`TOO_MANY_REQUESTS`, see
   * `maxQueuedRequestsPerSocket`), each push with a change refused for such a reason, each
   * unknown `sync:`/`tidesync:` event and each malformed frame counts one violation; at
   * `maxViolations` within `windowMs` the socket gets a final `tidesync:error`
   * (`TOO_MANY_VIOLATIONS`) and is disconnected, and the server logs a warning. `false` turns
   * it off.
   * @default { maxViolations: 20, windowMs: 10000 }
   */
  violations?: ViolationPolicyOptions | false
  /**
   * Change capture: every committed write to a model's table, whoever makes it (psql, a
   * migration, another service), is logged and reaches the clients, live and by pull.
   * `installTidesync` sets the triggers up (`setupCapture`) and one server at a time reads and
   * publishes what they captured. `false`: neither (writes outside tidesync's services are then
   * not seen until the record's next write through tidesync).
   * @default true
   */
  capture?: boolean | CaptureReaderOptions
}

export interface TidesyncServer<TCtx = AuthContext> extends Tidesync<TCtx> {
  /** Live subscriptions on this server's sockets. */
  readonly subscriptionCount: number
  /**
   * Requests of this server's sockets being handled (`running`, including pushes waiting for
   * an earlier push of their socket or clientId) and waiting for a slot of their socket
   * (`queued`), at this moment: for metrics.
   */
  readonly requests: { readonly running: number; readonly queued: number }
  /** Stops live pushes and stops serving new sockets (the socket.io server stays yours). */
  close(): Promise<void>
}

/**
 * Installs tidesync on an existing socket.io server: authentication, the request events of
 * PROTOCOL.md, and live pushes of every committed change (from any server sharing the IPC
 * store) to the sockets subscribed to its model, filtered by where and by each user's scope.
 *
 * @example
 * const io = new Server(httpServer, { maxHttpBufferSize: 32e6 })
 * await ensureSchema(db)
 * const tidesync = await installTidesync(io, {
 *   db, ipc: await createIpc({ driver: 'memory' }),
 *   models: { todos: { table: todos, scope: (ctx) => ({ ownerId: ctx.userId }) } },
 *   authenticate: async (handshake) => verifyToken(handshake.auth.token),
 * })
 */
export async function installTidesync<TCtx = AuthContext>(
  io: Server,
  options: InstallOptions<TCtx>,
): Promise<TidesyncServer<TCtx>> {
  // Checked before anything starts, so a bad configuration leaves nothing behind.
  const requestLimits = resolveRequestLimits(options)
  const socketLimit = (io.engine as unknown as { opts?: { maxHttpBufferSize?: number } } | undefined)?.opts
    ?.maxHttpBufferSize
  const tidesync = createTidesync(options, { socketLimit: socketLimit ?? 1e6 })
  const { core } = tidesync
  if (socketLimit !== undefined && core.limits.maxMessageBytes >= socketLimit) {
    core.logger.warn(
      `maxMessageBytes (${core.limits.maxMessageBytes}) >= socket.io maxHttpBufferSize (${socketLimit}): oversize messages will drop the connection instead of getting a PAYLOAD_TOO_LARGE answer`,
    )
  }
  const capture =
    options.capture === false
      ? null
      : new CaptureReader(core as never, options.capture === true ? {} : options.capture)
  // Before anything starts: a table that does not match its model fails here, naming the column.
  if (capture) await tidesync.setupCapture()
  const registry = new SubscriptionRegistry()
  const stopFanout = await startFanout(
    core.ipc,
    core.keyPrefix,
    core.models.keys(),
    registry,
    core.hlc,
    core.logger,
  )
  const policy = resolveViolationPolicy(options.violations)
  const gauge: RequestGauge = { running: 0, queued: 0 }
  const pushes = new PushSerializer()
  const nsp = io.of(options.namespace ?? '/')
  let closed = false
  nsp.use((socket, next) => {
    if (closed) return next(new Error('tidesync is closed'))
    void authMiddleware(options, core.logger)(socket, next)
  })

  const onConnection = (socket: Socket) => {
    const ctx = socketContext<TCtx>(socket)
    const subs = socketSubscriptions(core, registry, socket, ctx)
    const counter = policy ? new ViolationCounter(policy, core.now) : null
    const limiter = new RequestLimiter(requestLimits, gauge)
    let closing = false
    /** Counts a boundary violation; at the limit, says why and disconnects the socket. */
    const violation = (event: string, error: WireError) => {
      if (!counter || !policy || closing || !isViolation(error)) return
      if (!counter.record()) return
      closing = true
      limiter.close()
      const final = tooManyViolations(policy, error, event)
      core.logger.warn(`disconnecting socket ${socket.id} (${socket.handshake.address}): ${final.message}`)
      socket.emit('tidesync:error', final)
      socket.disconnect(true)
    }
    const reply = (event: string, ack: unknown, value: Reply<unknown>) => {
      if (value.error) violation(event, value.error)
      else if (event === 'sync:push') {
        const refused = (value.result as PushResult).outcomes.find(
          (o) => o.status === 'rejected' && isViolation(o.error),
        )
        if (refused?.status === 'rejected') violation(event, refused.error)
      }
      if (typeof ack === 'function') ack(value)
    }
    /**
     * One request, once it has a slot of its socket. A push first waits for the earlier pushes
     * of its socket and clientId (PushSerializer).
     */
    const run = async (event: string, payload: unknown, ack: unknown): Promise<void> => {
      if (event !== 'sync:push') {
        reply(event, ack, await tidesync.handle(event, payload, ctx))
        return
      }
      const release = await pushes.acquire(socket.id, payload)
      try {
        // Gone while it waited: like a queued request, it never runs.
        if (socket.disconnected) return
        reply(event, ack, await tidesync.handle(event, payload, ctx))
      } finally {
        release()
      }
    }
    for (const event of REQUEST_EVENTS) {
      socket.on(event, (payload: unknown, ack: unknown) => {
        if (typeof payload === 'function' && ack === undefined) {
          reply(event, payload, { error: { code: 'BAD_REQUEST', message: 'missing request payload' } })
          return
        }
        if (!limiter.submit(() => run(event, payload, ack)))
          reply(event, ack, { error: tooManyRequests(requestLimits) })
      })
    }
    const local = (event: string, fn: (payload: unknown) => unknown) => (payload: unknown, ack: unknown) => {
      try {
        const size = jsonByteLength(payload)
        if (size > core.limits.maxMessageBytes)
          throw new TidesyncValidationError('PAYLOAD_TOO_LARGE', `${size} bytes`)
        reply(event, ack, { result: fn(payload) })
      } catch (error) {
        reply(event, ack, { error: toTidesyncError(error).toWire() })
      }
    }
    socket.on('subscribe', local('subscribe', subs.subscribe))
    socket.on('unsubscribe', local('unsubscribe', subs.unsubscribe))
    socket.onAny((event: string, ...args: unknown[]) => {
      if (KNOWN_EVENTS.has(event) || !(event.startsWith('sync:') || event.startsWith('tidesync:'))) return
      reply(event, args[args.length - 1], {
        error: { code: 'UNKNOWN_METHOD', message: `unknown event ${JSON.stringify(event.slice(0, 64))}` },
      })
    })
    // A frame socket.io cannot decode: it closes the connection itself; say so in our log
    // (without a listener socket.io would print to the console).
    socket.on('error', (error: unknown) => {
      const message = error instanceof Error ? error.message : 'invalid frame'
      core.logger.warn(`socket ${socket.id} (${socket.handshake.address}) sent a malformed frame: ${message}`)
      violation('frame', { code: 'BAD_REQUEST', message })
    })
    socket.on('disconnect', () => {
      limiter.close()
      subs.clear()
    })
  }
  // Before serving: counter deltas a previous life of this deployment committed but did not
  // hand to the buffer (its IPC store, and the marks that hold readers, may be gone with it).
  await tidesync
    .recoverHandOffs({ minAgeMs: 0 })
    .catch((error) =>
      core.logger.warn('could not hand over owed counter writes at start-up (retried later)', error),
    )
  nsp.on('connection', onConnection)
  await capture?.start()

  return {
    ...tidesync,
    get subscriptionCount() {
      return registry.size
    },
    get requests() {
      return { running: gauge.running, queued: gauge.queued }
    },
    async close() {
      if (closed) return
      closed = true
      nsp.off('connection', onConnection)
      await capture?.stop()
      await stopFanout()
    },
  }
}
