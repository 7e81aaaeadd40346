/**
 * How the memory store keeps values: primitives as they are (immutable), objects and arrays as
 * JSON text parsed into a fresh copy on every read, so no caller holds a reference into the
 * store. Plus the Redis rules the store shares (index ranges, WRONGTYPE, integer checks).
 * @internal
 */
import { IpcError } from '../../errors.js'
import type { IpcKeyType, Json } from '../../types.js'

/** An object or array stored as JSON text, so nobody holds a reference into the store. */
export class Encoded {
  constructor(readonly json: string) {}
}

export type Stored = string | number | boolean | null | Encoded

export function encode(value: Json): Stored {
  return typeof value === 'object' && value !== null ? new Encoded(JSON.stringify(value)) : value
}

export function decode(stored: Stored): Json {
  return stored instanceof Encoded ? (JSON.parse(stored.json) as Json) : stored
}

export type EntryValue = Stored | Map<string, Stored> | Stored[] | Set<string>

/** One key. `expiresAt` is an epoch time in ms, 0 for no TTL. One shape for every type (fast). */
export class Entry {
  constructor(
    public type: IpcKeyType,
    public value: EntryValue,
    public expiresAt: number,
  ) {}
}

/** Normalises Redis LRANGE/LTRIM indexes; returns [from, to] inclusive, or null when empty. */
export function range(length: number, start: number, stop: number): [number, number] | null {
  let from = start < 0 ? Math.max(length + start, 0) : start
  const to = stop < 0 ? length + stop : Math.min(stop, length - 1)
  if (from > to || from >= length) return null
  from = Math.max(from, 0)
  return [from, to]
}

export function wrongType(key: string, holds: IpcKeyType, wanted: string): IpcError {
  return new IpcError(
    'IPC_WRONGTYPE',
    `WRONGTYPE: ${wanted} operation against key ${JSON.stringify(key)} holding a ${holds}`,
  )
}

/**
 * `current + n` for incrBy/hincrBy (a missing value counts as 0), or `IPC_NOT_INTEGER`. The
 * message names `key` (and `field`); it is only built on failure, as this runs on every call.
 */
export function checkedSum(current: Stored | undefined, n: number, key: string, field?: string): number {
  const base = current === undefined ? 0 : current
  if (typeof base !== 'number' || !Number.isSafeInteger(base)) {
    throw new IpcError('IPC_NOT_INTEGER', `${describeCounter(key, field)} is not an integer`)
  }
  const result = base + n
  if (!Number.isSafeInteger(result)) {
    throw new IpcError('IPC_NOT_INTEGER', `${describeCounter(key, field)} would leave the safe-integer range`)
  }
  return result
}

function describeCounter(key: string, field: string | undefined): string {
  return field === undefined
    ? `The value at ${JSON.stringify(key)}`
    : `Field ${JSON.stringify(field)} of ${JSON.stringify(key)}`
}
