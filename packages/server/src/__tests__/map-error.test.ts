import { DrizzleQueryError } from 'drizzle-orm/errors'
import { describe, expect, it } from 'vitest'
import { toTidesyncError } from '../db/map-error.js'
import { TidesyncError } from '../errors.js'

/** An error as node-postgres makes them: a message, maybe a SQLSTATE or errno `code`. */
function pgError(message: string, code?: string): Error {
  return Object.assign(new Error(message), code ? { code } : {})
}

/** drizzle's wrapping of a failed query (its `cause` is the driver's error). */
function failedQuery(query: string, cause: unknown): Error {
  return new DrizzleQueryError(query, [], cause as Error)
}

describe('toTidesyncError: a lost database connection is UNAVAILABLE (retryable)', () => {
  const lost: [string, unknown][] = [
    ['57P01 admin shutdown', pgError('terminating connection due to administrator command', '57P01')],
    [
      '57P02 crash shutdown',
      pgError('terminating connection because of crash of another server process', '57P02'),
    ],
    ['57P03 cannot connect now', pgError('the database system is starting up', '57P03')],
    ['08006 connection failure', pgError('connection failure', '08006')],
    ['08003 connection does not exist', pgError('connection does not exist', '08003')],
    ['ECONNREFUSED', pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['ECONNRESET', pgError('read ECONNRESET', 'ECONNRESET')],
    ['EPIPE', pgError('write EPIPE', 'EPIPE')],
    ['Connection terminated unexpectedly', pgError('Connection terminated unexpectedly')],
    ['Connection terminated', pgError('Connection terminated')],
    ['not queryable', pgError('Client has encountered a connection error and is not queryable')],
    ['pool connect timeout', pgError('timeout exceeded when trying to connect')],
    [
      "drizzle's failed ROLLBACK on the dead connection",
      failedQuery('rollback', pgError('Client has encountered a connection error and is not queryable')),
    ],
    [
      'drizzle-wrapped 57P01',
      failedQuery('update "todos" set ...', pgError('terminating connection', '57P01')),
    ],
    [
      'a cause chain several levels deep',
      new Error('outer', {
        cause: new Error('middle', { cause: pgError('Connection terminated unexpectedly') }),
      }),
    ],
    [
      'an AggregateError of connect attempts',
      new AggregateError([pgError('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')], 'connect failed'),
    ],
  ]
  for (const [name, error] of lost) {
    it(name, () => {
      const mapped = toTidesyncError(error)
      expect(mapped).toBeInstanceOf(TidesyncError)
      expect(mapped.code).toBe('UNAVAILABLE')
      expect(mapped.toWire().retryable).toBe(true)
      expect(mapped.cause).toBe(error)
    })
  }
})

describe('toTidesyncError: other errors keep their mapping', () => {
  it('constraint, bad data, deadlock, IPC', () => {
    expect(toTidesyncError(failedQuery('insert', pgError('duplicate key', '23505'))).code).toBe('BAD_REQUEST')
    expect(toTidesyncError(pgError('null value', '23502')).code).toBe('INVALID_TYPE')
    expect(toTidesyncError(pgError('bad date', '22007')).code).toBe('INVALID_DATE')
    expect(toTidesyncError(pgError('deadlock detected', '40P01')).code).toBe('UNAVAILABLE')
    expect(toTidesyncError(pgError('lock wait', 'IPC_LOCK_TIMEOUT')).code).toBe('UNAVAILABLE')
  })

  it('anything else is INTERNAL, without its message', () => {
    for (const error of [
      new Error('boom'),
      pgError('relation "nope" does not exist', '42P01'),
      failedQuery('select', new Error('Connection string is wrong')),
      'a string',
      undefined,
    ]) {
      const mapped = toTidesyncError(error)
      expect(mapped.code).toBe('INTERNAL')
      expect(mapped.message).toBe('internal server error')
    }
  })

  it('a connection-loss message does not override a SQLSTATE found first', () => {
    const error = pgError('Connection terminated: duplicate key', '23505')
    expect(toTidesyncError(error).code).toBe('BAD_REQUEST')
  })

  it('a cyclic cause chain ends', () => {
    const a = new Error('a') as Error & { cause?: unknown }
    const b = new Error('b', { cause: a })
    a.cause = b
    expect(toTidesyncError(a).code).toBe('INTERNAL')
  })

  it('TidesyncErrors pass through', () => {
    const error = new TidesyncError('NOT_FOUND', 'gone')
    expect(toTidesyncError(error)).toBe(error)
  })
})
