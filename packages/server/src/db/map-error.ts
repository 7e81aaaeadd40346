import type { ErrorCode } from '@tidesync/protocol'
import { TidesyncError } from '../errors.js'

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/**
 * What node-postgres throws, without a SQLSTATE or errno, when a connection is lost or cannot be
 * had: a terminated connection, a query on a client whose connection failed (drizzle's ROLLBACK
 * after the failed query throws this one, and it replaces the first error), the pool's connect
 * timeout.
 */
const CONNECTION_LOST_MESSAGES = [
  /^Connection terminated/,
  /has encountered a connection error and is not queryable/,
  /^timeout exceeded when trying to connect/,
]

const UNAVAILABLE_DATABASE = {
  code: 'UNAVAILABLE',
  message: 'the database is unavailable, retry later',
} as const

function codeFor(state: string): { code: ErrorCode; message: string } | undefined {
  if (
    NETWORK_CODES.has(state) ||
    state.startsWith('08') ||
    state.startsWith('53') ||
    state.startsWith('57')
  ) {
    return UNAVAILABLE_DATABASE
  }
  if (state === '40001' || state === '40P01' || state === '55P03') {
    return { code: 'UNAVAILABLE', message: 'a concurrent write got in the way, retry' }
  }
  if (state === 'IPC_LOCK_TIMEOUT')
    return { code: 'UNAVAILABLE', message: 'another sync of this data is running, retry' }
  if (state === 'IPC_UNAVAILABLE' || state === 'IPC_CLOSED')
    return { code: 'UNAVAILABLE', message: 'coordination is unavailable, retry later' }
  if (state === '23502') return { code: 'INVALID_TYPE', message: 'a required column is missing or null' }
  if (state.startsWith('23'))
    return { code: 'BAD_REQUEST', message: `the database refused the write (constraint ${state})` }
  if (state === '22007' || state === '22008') return { code: 'INVALID_DATE', message: 'invalid date' }
  if (state.startsWith('22'))
    return { code: 'INVALID_TYPE', message: `a value the column cannot hold (${state})` }
  return undefined
}

/** A SQLSTATE, errno or IPC code of this one error (not its causes). */
function ownCode(error: object): string | undefined {
  const code = (error as { code?: unknown }).code
  if (
    typeof code === 'string' &&
    (/^[0-9A-Z]{5}$/.test(code) || NETWORK_CODES.has(code) || code.startsWith('IPC_'))
  ) {
    return code
  }
  return undefined
}

function isConnectionLoss(error: object): boolean {
  const message = (error as { message?: unknown }).message
  return typeof message === 'string' && CONNECTION_LOST_MESSAGES.some((pattern) => pattern.test(message))
}

/**
 * The wire code of an error: the first error in its chain (the error, its `cause`, the `errors`
 * of an AggregateError, and so on, breadth first) with a code or a known connection-loss message
 * decides. `undefined` when none does.
 */
function classify(error: unknown): { code: ErrorCode; message: string } | undefined {
  const queue: unknown[] = [error]
  const seen = new Set<unknown>()
  for (let i = 0; i < queue.length && i < 32; i++) {
    const current = queue[i]
    if (!current || typeof current !== 'object' || seen.has(current)) continue
    seen.add(current)
    const code = ownCode(current)
    if (code) return codeFor(code)
    if (isConnectionLoss(current)) return UNAVAILABLE_DATABASE
    const { cause, errors } = current as { cause?: unknown; errors?: unknown }
    if (cause !== undefined) queue.push(cause)
    if (Array.isArray(errors)) queue.push(...errors)
  }
  return undefined
}

/**
 * Any error as a `TidesyncError`: ours pass through, database and IPC errors get a wire code
 * (constraint -> BAD_REQUEST, bad data -> INVALID_TYPE, lost connection/lock -> UNAVAILABLE), and
 * anything else becomes INTERNAL without leaking its message.
 */
export function toTidesyncError(error: unknown): TidesyncError {
  if (error instanceof TidesyncError) return error
  const mapped = classify(error)
  if (mapped) return new TidesyncError(mapped.code, mapped.message, { cause: error })
  return new TidesyncError('INTERNAL', 'internal server error', { cause: error })
}
