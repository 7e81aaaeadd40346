/**
 * Boundary validation shared by every driver (and by the cluster primary, which re-checks what
 * workers send). Each check throws a typed `IpcError` before anything is stored.
 *
 * These run on every operation, so the common cases (a string key, a number, a small object)
 * take a fast path and paths for error messages are only built when something is wrong.
 */
import { IpcError } from './errors.js'
import type { IpcEntry, Json } from './types.js'

/** Values nested deeper than this are refused (instead of overflowing the stack later). */
export const MAX_VALUE_DEPTH = 512

/** The longest TTL we accept, in seconds (~285 years; keeps ms in the safe-integer range). */
const MAX_TTL_SECONDS = 9_000_000_000

/** Describes a bad value for an error message: `a function`, `NaN`, `an instance of Foo`, ... */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined'
    case 'function':
      return 'a function'
    case 'bigint':
      return `a BigInt (${value}n)`
    case 'symbol':
      return 'a symbol'
    case 'number':
      return Number.isNaN(value) ? 'NaN' : String(value)
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)
    case 'boolean':
      return String(value)
    default: {
      if (value === null) return 'null'
      if (Array.isArray(value)) return 'an array'
      const proto = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) return 'an object'
      const name = (proto?.constructor as { name?: string } | undefined)?.name
      return name ? `an instance of ${name}` : 'a non-plain object'
    }
  }
}

/** Fails with `IPC_INVALID_KEY` unless `key` is a non-empty string. */
export function validateKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new IpcError('IPC_INVALID_KEY', `${what} must be a non-empty string, got ${describeValue(key)}`)
  }
}

/** Validates a list of keys (variadic arguments). */
export function validateKeys(keys: unknown, what = 'keys'): asserts keys is string[] {
  if (!Array.isArray(keys)) throw invalidArgument(`${what} must be an array of keys`)
  for (let i = 0; i < keys.length; i++) {
    const key: unknown = keys[i]
    if (typeof key !== 'string' || key.length === 0) validateKey(key, `${what}[${i}]`)
  }
}

/** A plain object: created by `{}`/JSON.parse, or with a null prototype. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

interface Problem {
  /** Path segments from the innermost bad value outwards (reversed when reported). */
  segments: (string | number)[]
  reason: string
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

function formatPath(root: string, segments: (string | number)[]): string {
  let path = root
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i]!
    if (typeof segment === 'number') path += `[${segment}]`
    else if (IDENTIFIER.test(segment)) path += `.${segment}`
    else path += `[${JSON.stringify(segment)}]`
  }
  return path
}

/** Returns why `value` is not JSON data that round-trips exactly, or undefined when it is. */
function findProblem(value: unknown, ancestors: object[]): Problem | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined
    case 'number':
      return Number.isFinite(value) ? undefined : { segments: [], reason: describeValue(value) }
    case 'object':
      if (value === null) return undefined
      break
    default:
      return { segments: [], reason: describeValue(value) }
  }
  if (ancestors.includes(value)) return { segments: [], reason: 'a cyclic reference' }
  if (ancestors.length >= MAX_VALUE_DEPTH) {
    return { segments: [], reason: `nested deeper than ${MAX_VALUE_DEPTH} levels` }
  }
  if (Array.isArray(value)) {
    ancestors.push(value)
    for (let i = 0; i < value.length; i++) {
      // Holes read as undefined and are refused too (JSON would turn them into null).
      const problem = findProblem(value[i], ancestors)
      if (problem) {
        problem.segments.push(i)
        return problem
      }
    }
    ancestors.pop()
    return undefined
  }
  if (!isPlainObject(value)) return { segments: [], reason: describeValue(value) }
  if (Object.getOwnPropertySymbols(value).length > 0) {
    return { segments: [], reason: 'an object with symbol keys' }
  }
  ancestors.push(value)
  for (const key of Object.keys(value)) {
    const problem = findProblem(value[key], ancestors)
    if (problem) {
      problem.segments.push(key)
      return problem
    }
  }
  ancestors.pop()
  return undefined
}

/** `findProblem` with a fast path for the common case, a primitive. */
function problemOf(value: unknown): Problem | undefined {
  const type = typeof value
  if (type === 'string' || type === 'boolean' || value === null) return undefined
  if (type === 'number' && Number.isFinite(value)) return undefined
  return findProblem(value, [])
}

function invalidValue(root: string, problem: Problem): IpcError {
  return new IpcError(
    'IPC_INVALID_VALUE',
    `${formatPath(root, problem.segments)} is ${problem.reason}: values must be JSON data that round-trips exactly`,
  )
}

/**
 * Fails with `IPC_INVALID_VALUE` unless `value` is JSON data that round-trips exactly: null,
 * booleans, finite numbers, strings, arrays and plain objects of those (no undefined, functions,
 * symbols, BigInt, NaN/Infinity, Dates, Maps, class instances, holes or cycles). The message
 * names the path of the first bad part, e.g. `value.a[2] is a function`.
 */
export function validateValue(value: unknown, path = 'value'): asserts value is Json {
  const problem = problemOf(value)
  if (problem) throw invalidValue(path, problem)
}

/** Validates variadic list items. */
export function validateValues(values: unknown, path = 'items'): asserts values is Json[] {
  if (!Array.isArray(values)) throw invalidArgument(`${path} must be an array`)
  for (let i = 0; i < values.length; i++) {
    const problem = problemOf(values[i])
    if (problem) {
      problem.segments.push(i)
      throw invalidValue(path, problem)
    }
  }
}

/**
 * Validates `hset` fields: a plain object with at least one field, every value JSON.
 * A field named `__proto__` is an ordinary field (stores use Maps / define own properties).
 */
export function validateFields(fields: unknown, path = 'fields'): asserts fields is Record<string, Json> {
  if (!isPlainObject(fields)) {
    throw invalidArgument(`${path} must be a plain object of field -> value, got ${describeValue(fields)}`)
  }
  if (Object.getOwnPropertySymbols(fields).length > 0) {
    throw new IpcError('IPC_INVALID_VALUE', `${path} has symbol keys: field names must be strings`)
  }
  let count = 0
  for (const field of Object.keys(fields)) {
    count++
    const problem = problemOf(fields[field])
    if (problem) {
      problem.segments.push(field)
      throw invalidValue(path, problem)
    }
  }
  if (count === 0) throw invalidArgument(`${path} must have at least one field`)
}

/** Fails with `IPC_INVALID_ARGUMENT` unless `n` is a safe integer (deltas of incrBy/hincrBy). */
export function validateDelta(n: unknown, what = 'n'): asserts n is number {
  if (!Number.isSafeInteger(n)) {
    throw invalidArgument(`${what} must be a safe integer, got ${describeValue(n)}`)
  }
}

/** Fails with `IPC_INVALID_ARGUMENT` unless `index` is a safe integer (list indexes). */
export function validateIndex(index: unknown, what = 'index'): asserts index is number {
  if (!Number.isSafeInteger(index)) {
    throw invalidArgument(`${what} must be an integer, got ${describeValue(index)}`)
  }
}

/**
 * Validates a TTL in seconds (a positive finite number, may be fractional) and returns it in
 * whole milliseconds, rounded up so a tiny TTL never becomes "no TTL".
 */
export function toTtlMs(ttlSeconds: unknown, what = 'ttlSeconds'): number {
  if (typeof ttlSeconds !== 'number' || !(ttlSeconds > 0) || !(ttlSeconds <= MAX_TTL_SECONDS)) {
    throw invalidArgument(
      `${what} must be a positive finite number of seconds, got ${describeValue(ttlSeconds)}`,
    )
  }
  return Math.ceil(ttlSeconds * 1000)
}

/** Validates a TTL already converted to ms (as drivers pass it around): a positive safe integer. */
export function validateTtlMs(ttlMs: unknown, what = 'ttlMs'): asserts ttlMs is number {
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) <= 0) {
    throw invalidArgument(`${what} must be a positive integer of milliseconds, got ${describeValue(ttlMs)}`)
  }
}

/** Fails with `IPC_INVALID_ARGUMENT` unless `value` is a string (hash fields, set members, prefixes). */
export function validateString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string')
    throw invalidArgument(`${what} must be a string, got ${describeValue(value)}`)
}

/** Validates variadic strings (set members, hash fields); at least one, as in Redis. */
export function validateStrings(values: unknown, what: string): asserts values is string[] {
  if (!Array.isArray(values)) throw invalidArgument(`${what} must be an array of strings`)
  if (values.length === 0) throw invalidArgument(`at least one ${what} is required`)
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'string') validateString(values[i], `${what}[${i}]`)
  }
}

/** Channels are non-empty strings. */
export function validateChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || channel.length === 0) {
    throw invalidArgument(`channel must be a non-empty string, got ${describeValue(channel)}`)
  }
}

/** Validates checkpoint entries for `restore`. */
export function validateEntries(entries: unknown): asserts entries is IpcEntry[] {
  if (!Array.isArray(entries))
    throw invalidArgument(`entries must be an array, got ${describeValue(entries)}`)
  for (let i = 0; i < entries.length; i++) {
    const entry: unknown = entries[i]
    const path = `entries[${i}]`
    if (!isPlainObject(entry)) throw invalidArgument(`${path} must be an object, got ${describeValue(entry)}`)
    validateKey(entry.key, `${path}.key`)
    const expiresAt = entry.expiresAt
    if (expiresAt !== undefined && !Number.isSafeInteger(expiresAt)) {
      throw invalidArgument(`${path}.expiresAt must be an epoch time in ms, got ${describeValue(expiresAt)}`)
    }
    const value = entry.value
    switch (entry.type) {
      case 'string':
        validateValue(value, `${path}.value`)
        break
      case 'hash':
        if (!isPlainObject(value)) throw invalidArgument(`${path}.value must be an object for a hash`)
        for (const field of Object.keys(value))
          validateValue(value[field], formatPath(`${path}.value`, [field]))
        break
      case 'list':
        validateValues(value, `${path}.value`)
        break
      case 'set':
        if (!Array.isArray(value))
          throw invalidArgument(`${path}.value must be an array of strings for a set`)
        for (let j = 0; j < value.length; j++) validateString(value[j], `${path}.value[${j}]`)
        break
      default:
        throw invalidArgument(`${path}.type must be 'string', 'hash', 'list' or 'set'`)
    }
  }
}

export function invalidArgument(message: string): IpcError {
  return new IpcError('IPC_INVALID_ARGUMENT', message)
}
