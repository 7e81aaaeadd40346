import type { WireError } from '@tidesync/protocol'
import type { Socket } from 'socket.io'
import type { TidesyncOptions } from '../options.js'
import type { Logger } from '../types.js'

const CONTEXT = Symbol.for('tidesync.context')

/** An Error socket.io sends to the client as `connect_error` (its `data` is the wire error). */
export class UnauthorizedError extends Error {
  readonly data: WireError
  constructor(message: string) {
    super(message)
    this.data = { code: 'UNAUTHORIZED', message }
  }
}

/**
 * The socket.io middleware of `authenticate`: a socket whose handshake does not authenticate
 * (falsy result or a throw) is refused with `connect_error` `{ message: 'UNAUTHORIZED', data:
 * { code: 'UNAUTHORIZED', message } }`. Without `authenticate` every socket gets the context `{}`.
 */
export function authMiddleware<TCtx>(options: Pick<TidesyncOptions<TCtx>, 'authenticate'>, logger: Logger) {
  return async (socket: Socket, next: (error?: Error) => void): Promise<void> => {
    if (!options.authenticate) {
      ;(socket.data as Record<symbol, unknown>)[CONTEXT] = {}
      next()
      return
    }
    try {
      const ctx = await options.authenticate(socket.handshake)
      if (!ctx) {
        next(new UnauthorizedError('UNAUTHORIZED'))
        return
      }
      ;(socket.data as Record<symbol, unknown>)[CONTEXT] = ctx
      next()
    } catch (error) {
      logger.debug('authenticate threw', error)
      next(new UnauthorizedError('UNAUTHORIZED'))
    }
  }
}

/** The context `authenticate` gave this socket. */
export function socketContext<TCtx>(socket: Socket): TCtx {
  return (socket.data as Record<symbol, unknown>)[CONTEXT] as TCtx
}
