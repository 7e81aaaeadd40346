import type { ClientToServerEvents, Reply, ServerToClientEvents } from '@tidesync/protocol'
import type { Socket } from 'socket.io-client'
import { TidesyncClientError, TidesyncServerError } from '../errors.js'
import type { Timers } from '../types.js'

/** The socket.io-client socket, typed with the tidesync protocol. */
export type TidesyncSocket = Socket<ServerToClientEvents, ClientToServerEvents>

/** The request events of the protocol (those answered through an acknowledgement). */
export type RequestEvent = keyof ClientToServerEvents

type RequestOf<E extends RequestEvent> = Parameters<ClientToServerEvents[E]>[0]
type ResultOf<E extends RequestEvent> =
  Parameters<Parameters<ClientToServerEvents[E]>[1]>[0] extends Reply<infer T> ? T : never

/**
 * Connects the socket unless it is connected or already joining. socket.io-client's `connect()`
 * on a socket whose connection is open but whose namespace join (the CONNECT packet) is not
 * answered yet sends a second join, and the server treats that as a protocol violation and
 * closes the whole connection ("invalid state"): the client would see `connect`, report online,
 * and lose the connection a moment later. A socket that is active (subscribed to its manager) on
 * an open manager has sent its join and waits for the answer. Any other socket gets `connect()`:
 * an inactive one (never connected, `disconnect()`ed, refused) starts connecting; on one whose
 * manager is still opening or reconnecting it changes nothing (the socket joins once the manager
 * is open). `_readyState` is socket.io-client's (typed, public); the tests in
 * `connection-races.test.ts` fail if it stops meaning this.
 */
export function connectSocket(socket: TidesyncSocket): void {
  if (socket.connected) return
  if (socket.active && socket.io._readyState === 'open') return
  socket.connect()
}

/** Per-request options of `Transport.request`. */
export interface RequestOptions {
  /** This request's timeout. @default the transport's `requestTimeoutMs` */
  timeoutMs?: number
  /**
   * Called once when the timeout passes without an answer, INSTEAD of failing the request: the
   * request stays open, its answer (however late) still settles it, and a dropped connection
   * still fails it. For requests whose first copy must not be sent again while it may still run
   * on the server (pushes). @default undefined (the request fails with `CLIENT_TIMEOUT`)
   */
  onTimeout?: () => void
}

/**
 * Request/answer over the socket. Why not socket.io's `timeout().emitWithAck()`: a request must
 * also fail at once when the connection drops (its answer can no longer come), and the timer
 * must come from the injectable `timers` so tests control time.
 */
export class Transport {
  /** Fails an open request; one per request that has no answer yet. */
  private readonly open = new Set<(error: TidesyncClientError) => void>()

  constructor(
    private readonly socket: TidesyncSocket,
    private readonly timers: Timers,
    private readonly timeoutMs: number,
  ) {}

  get connected(): boolean {
    return this.socket.connected
  }

  /** Fails every open request with `error` (the client was closed: no answer is wanted anymore). */
  abort(error: TidesyncClientError): void {
    for (const fail of [...this.open]) fail(error)
  }

  request<E extends RequestEvent>(
    event: E,
    payload: RequestOf<E>,
    options: RequestOptions = {},
  ): Promise<ResultOf<E>> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const onTimeout = options.onTimeout
    return new Promise<ResultOf<E>>((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new TidesyncClientError('CLIENT_OFFLINE', `Cannot send ${event}: not connected`))
        return
      }
      let done = false
      const finish = (settle: () => void) => {
        if (done) return
        done = true
        this.timers.clearTimeout(timer)
        this.socket.off('disconnect', onDisconnect)
        this.open.delete(fail)
        settle()
      }
      const fail = (error: TidesyncClientError) => finish(() => reject(error))
      const onDisconnect = () =>
        fail(
          new TidesyncClientError('CLIENT_TIMEOUT', `The connection dropped before the answer to ${event}`),
        )
      const timer = this.timers.setTimeout(() => {
        if (done) return
        if (onTimeout) onTimeout()
        else fail(new TidesyncClientError('CLIENT_TIMEOUT', `No answer to ${event} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.socket.on('disconnect', onDisconnect)
      this.open.add(fail)
      const ack = (reply: Reply<ResultOf<E>>) =>
        finish(() => {
          if (reply && typeof reply === 'object' && reply.error) {
            const { code, message, retryable } = reply.error
            reject(new TidesyncServerError(code, message, retryable ?? false, event))
          } else if (reply && typeof reply === 'object' && 'result' in reply) {
            resolve(reply.result as ResultOf<E>)
          } else {
            reject(new TidesyncServerError('INTERNAL', `Malformed answer to ${event}`, true, event))
          }
        })
      ;(this.socket.emit as (event: string, ...args: unknown[]) => void)(event, payload, ack)
    })
  }
}
