import { TidesyncValidationError } from '../errors.js'

/** Small shape checks for payload fields; each throws a validation error naming the path. */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
}

export function expectObject(value: unknown, path: string): Record<string, unknown> {
  if (!isRecord(value)) throw new TidesyncValidationError('BAD_REQUEST', 'must be an object', path)
  return value
}

export function expectString(value: unknown, path: string, maxLength = 256): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TidesyncValidationError('BAD_REQUEST', 'must be a non-empty string', path)
  }
  if (value.length > maxLength)
    throw new TidesyncValidationError('BAD_REQUEST', `longer than ${maxLength} characters`, path)
  return value
}

export function optionalPositiveInt(value: unknown, path: string, max: number): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TidesyncValidationError('BAD_REQUEST', 'must be a positive integer', path)
  }
  if (value > max) throw new TidesyncValidationError('PAYLOAD_TOO_LARGE', `at most ${max}`, path)
  return value
}

/** Refuses keys a payload object may not have (a typo or an injection attempt). */
export function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TidesyncValidationError(
        'BAD_REQUEST',
        `unexpected field ${JSON.stringify(key)}`,
        path || undefined,
      )
    }
  }
}
