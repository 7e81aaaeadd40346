import { TidesyncValidationError } from '../errors.js'

/** Keys that could reach an object's prototype when a payload is merged or copied. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

const MAX_DEPTH = 100

/**
 * Walks a payload as received (socket.io's JSON.parse makes `__proto__` an own property) and
 * refuses forbidden keys anywhere (`FORBIDDEN_KEY`), and values JSON cannot carry or nesting
 * deeper than 100 levels (`BAD_REQUEST`). Iterative, so deep input cannot overflow the stack.
 */
export function assertSafePayload(payload: unknown): void {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value: payload, path: '', depth: 0 },
  ]
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!
    if (value === null || typeof value !== 'object') {
      if (typeof value === 'function' || typeof value === 'symbol') {
        throw new TidesyncValidationError('BAD_REQUEST', `a ${typeof value} is not JSON`, path || undefined)
      }
      continue
    }
    if (value instanceof Date) continue
    if (depth >= MAX_DEPTH)
      throw new TidesyncValidationError('BAD_REQUEST', 'nested too deep', path || undefined)
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++)
        stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 })
      continue
    }
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      throw new TidesyncValidationError('BAD_REQUEST', 'only plain objects are accepted', path || undefined)
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) {
        throw new TidesyncValidationError(
          'FORBIDDEN_KEY',
          `the key ${JSON.stringify(key)} is not allowed`,
          path || undefined,
        )
      }
      stack.push({
        value: (value as Record<string, unknown>)[key],
        path: path ? `${path}.${key}` : key,
        depth: depth + 1,
      })
    }
  }
}

/** The JSON size of a payload in bytes (what the client sent, give or take whitespace). */
export function jsonByteLength(payload: unknown): number {
  const text = JSON.stringify(payload ?? null)
  return Buffer.byteLength(text ?? '', 'utf8')
}
