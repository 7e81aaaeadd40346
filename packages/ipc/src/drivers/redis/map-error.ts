import { IpcError, IpcUnavailableError } from '../../errors.js'

/**
 * What an error from ioredis means for the caller.
 *
 * - `not-sent`: the command never reached Redis (no connection at the time): safe to send again.
 * - `lost`: the command was written but the connection dropped before the reply: it may or may
 *   not have been applied, so it is only sent again when the operation is idempotent.
 * - `reply`: Redis answered with an error, already turned into an `IpcError`.
 *
 * @internal
 */
export type RedisFailure =
  | { kind: 'not-sent'; cause: Error }
  | { kind: 'lost'; cause: Error }
  | { kind: 'reply'; error: IpcError }

/** The message ioredis rejects with when `enableOfflineQueue` is off and there is no connection. */
const NOT_WRITABLE = "Stream isn't writeable"
/** Redis error prefixes that mean "not now, nothing applied". */
const BUSY_PREFIXES = [
  'LOADING',
  'BUSY',
  'MASTERDOWN',
  'TRYAGAIN',
  'READONLY',
  'OOM',
  'MISCONF',
  'NOREPLICAS',
]

/** @internal */
export function classifyRedisError(error: unknown): RedisFailure {
  const cause = error instanceof Error ? error : new Error(String(error))
  if (cause.name === 'ReplyError') return { kind: 'reply', error: mapReplyError(cause) }
  if (cause.message.startsWith(NOT_WRITABLE)) return { kind: 'not-sent', cause }
  // MaxRetriesPerRequestError (in flight when the socket closed, see connection.ts), AbortError,
  // "Connection is closed.", socket timeouts: the command may have reached Redis.
  return { kind: 'lost', cause }
}

function mapReplyError(error: Error): IpcError {
  const message = error.message
  if (message.startsWith('WRONGTYPE')) {
    return new IpcError('IPC_WRONGTYPE', 'Operation against a key holding the wrong kind of value', {
      cause: error,
    })
  }
  if (/not an integer|overflow/i.test(message)) {
    return new IpcError('IPC_NOT_INTEGER', `The value is not an integer or the result is out of range`, {
      cause: error,
    })
  }
  const busy = BUSY_PREFIXES.some((prefix) => message.startsWith(prefix))
  return new IpcUnavailableError(
    busy
      ? `Redis cannot serve the command right now (nothing was applied): ${message}`
      : `Redis refused the command: ${message}`,
    false,
    { cause: error },
  )
}
