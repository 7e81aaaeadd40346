import { TidesyncError } from '../errors.js'
import type { ErrorCode } from '../protocol.js'

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
])

function sqlState(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code
    if (
      typeof code === 'string' &&
      (/^[0-9A-Z]{5}$/.test(code) || NETWORK_CODES.has(code) || code.startsWith('IPC_'))
    ) {
      return code
    }
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

function codeFor(state: string): { code: ErrorCode; message: string } | undefined {
  if (
    NETWORK_CODES.has(state) ||
    state.startsWith('08') ||
    state.startsWith('53') ||
    state.startsWith('57')
  ) {
    return { code: 'UNAVAILABLE', message: 'the database is unavailable, retry later' }
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

/**
 * Any error as a `TidesyncError`: ours pass through, database and IPC errors get a wire code
 * (constraint -> BAD_REQUEST, bad data -> INVALID_TYPE, connection/lock -> UNAVAILABLE), and
 * anything else becomes INTERNAL without leaking its message.
 */
export function toTidesyncError(error: unknown): TidesyncError {
  if (error instanceof TidesyncError) return error
  const state = sqlState(error)
  const mapped = state ? codeFor(state) : undefined
  if (mapped) return new TidesyncError(mapped.code, mapped.message, { cause: error })
  return new TidesyncError('INTERNAL', 'internal server error', { cause: error })
}
