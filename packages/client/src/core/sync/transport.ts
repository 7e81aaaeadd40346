import type { ClientToServerEvents, Reply, ServerToClientEvents } from '@tidesync/server/protocol'
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
 * Request/answer over the socket. Why not socket.io's `timeout().emitWithAck()`: a request must
 * also fail at once when the connection drops (its answer can no longer come), and the timer
 * must come from the injectable `timers` so tests control time.
 */
export class Transport {
  constructor(
    private readonly socket: TidesyncSocket,
    private readonly timers: Timers,
    private readonly timeoutMs: number,
  ) {}

  get connected(): boolean {
    return this.socket.connected
  }

  request<E extends RequestEvent>(event: E, payload: RequestOf<E>): Promise<ResultOf<E>> {
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
        settle()
      }
      const onDisconnect = () =>
        finish(() =>
          reject(
            new TidesyncClientError('CLIENT_TIMEOUT', `The connection dropped before the answer to ${event}`),
          ),
        )
      const timer = this.timers.setTimeout(
        () =>
          finish(() =>
            reject(
              new TidesyncClientError('CLIENT_TIMEOUT', `No answer to ${event} within ${this.timeoutMs} ms`),
            ),
          ),
        this.timeoutMs,
      )
      this.socket.on('disconnect', onDisconnect)
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
