import { describe, expect, it } from 'vitest'
import { ERROR_CODES, type ErrorCode, errorPolicy, isErrorCode } from './errors.js'

const codes = (pick: (code: ErrorCode) => boolean) => (Object.keys(ERROR_CODES) as ErrorCode[]).filter(pick)

describe('error policy', () => {
  it('refuses one change of a push for boundary errors and refusals of the record', () => {
    expect(codes((code) => ERROR_CODES[code].rejectsChange).sort()).toEqual(
      [
        'BAD_REQUEST',
        'UNKNOWN_MODEL',
        'UNKNOWN_METHOD',
        'UNKNOWN_COLUMN',
        'INVALID_TYPE',
        'INVALID_DATE',
        'FORBIDDEN_KEY',
        'FORBIDDEN',
        'NOT_FOUND',
        'PAYLOAD_TOO_LARGE',
      ].sort(),
    )
  })

  it('counts boundary errors and ignoring the request queue as violations, not refusals', () => {
    expect(codes((code) => ERROR_CODES[code].violation).sort()).toEqual(
      [
        'BAD_REQUEST',
        'UNKNOWN_MODEL',
        'UNKNOWN_METHOD',
        'UNKNOWN_COLUMN',
        'INVALID_TYPE',
        'INVALID_DATE',
        'FORBIDDEN_KEY',
        'PAYLOAD_TOO_LARGE',
        'TOO_MANY_REQUESTS',
      ].sort(),
    )
  })

  it('marks only temporary conditions retryable', () => {
    expect(codes((code) => ERROR_CODES[code].retryable).sort()).toEqual(['TOO_MANY_REQUESTS', 'UNAVAILABLE'])
  })

  it('reads codes of a newer server as harmless and not retryable', () => {
    expect(isErrorCode('UNAVAILABLE')).toBe(true)
    expect(isErrorCode('SOMETHING_NEW')).toBe(false)
    expect(isErrorCode('toString')).toBe(false)
    expect(errorPolicy('SOMETHING_NEW')).toEqual({ rejectsChange: false, violation: false, retryable: false })
    expect(errorPolicy('UNAVAILABLE').retryable).toBe(true)
    expect(Object.isFrozen(ERROR_CODES)).toBe(true)
  })
})
