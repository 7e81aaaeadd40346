/**
 * How values are stored in Redis: every value (string keys, hash fields, list items, pub/sub
 * messages) is its JSON text, so `set(k, 5)` stores `5` (which INCRBY accepts, and INCRBY's
 * result reads back as the number) and `set(k, '5')` stores `"5"` (which INCRBY refuses, as the
 * memory driver does). Set members are plain strings (they are strings in the API already).
 *
 * @internal
 */

import { IpcError } from '../../errors.js'
import { safeAssign } from '../../safe-assign.js'
import type { IpcEntry, IpcKeyType, Json } from '../../types.js'
import type { DumpReply } from './scripts.js'

export function encode(value: Json): string {
  return JSON.stringify(value)
}

/** Parses a stored value; text that is not JSON was written by something else than this driver. */
export function decode(raw: string): Json {
  try {
    return JSON.parse(raw) as Json
  } catch (error) {
    throw new IpcError(
      'IPC_INVALID_VALUE',
      `Redis holds a value that is not JSON (${JSON.stringify(raw.slice(0, 40))}): was it written by another client under the same key prefix?`,
      { cause: error },
    )
  }
}

export function decodeNullable(raw: string | null): Json | null {
  return raw === null ? null : decode(raw)
}

export function decodeList(raw: string[]): Json[] {
  const out = new Array<Json>(raw.length)
  for (let i = 0; i < raw.length; i++) out[i] = decode(raw[i]!)
  return out
}

/** HMGET's reply: a value or null per field. */
export function decodeNullableList(raw: Array<string | null>): Array<Json | null> {
  const out = new Array<Json | null>(raw.length)
  for (let i = 0; i < raw.length; i++) out[i] = decodeNullable(raw[i]!)
  return out
}

/** From ioredis's HGETALL object (which already keeps `__proto__` as an own field). */
export function decodeHashObject(raw: Record<string, string>): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (const field of Object.keys(raw)) safeAssign(out, field, decode(raw[field]!))
  return out
}

/** From a flat `field, value, field, value` array (HGETALL inside a Lua script). */
export function decodeHashPairs(raw: string[]): Record<string, Json> {
  const out: Record<string, Json> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) safeAssign(out, raw[i]!, decode(raw[i + 1]!))
  return out
}

/** Flattens hash fields into HSET's `field, value, ...` arguments. */
export function encodeHashArgs(fields: Record<string, Json>): string[] {
  const args: string[] = []
  for (const field of Object.keys(fields)) args.push(field, JSON.stringify(fields[field]))
  return args
}

/**
 * Turns the dump script's reply into entries. `now` is the client's clock when the reply
 * arrived; `expiresAt` is `now + pttl`, in the epoch ms every driver uses.
 */
export function decodeDump(reply: DumpReply, userKey: (redisKey: string) => string, now: number): IpcEntry[] {
  const entries: IpcEntry[] = []
  for (let i = 0; i + 3 < reply.length; i += 4) {
    const key = userKey(reply[i] as string)
    const type = reply[i + 1] as IpcKeyType
    const pttl = Number(reply[i + 2])
    const payload = reply[i + 3]
    // -2: expired between SCAN and PTTL cannot happen inside a script, but stay safe.
    if (pttl === -2) continue
    const expiresAt = pttl >= 0 ? now + pttl : undefined
    let entry: IpcEntry
    switch (type) {
      case 'string':
        entry = { key, type, value: decode(payload as string) }
        break
      case 'hash':
        entry = { key, type, value: decodeHashPairs(payload as string[]) }
        break
      case 'list':
        entry = { key, type, value: decodeList(payload as string[]) }
        break
      case 'set':
        entry = { key, type, value: [...(payload as string[])] }
        break
      default:
        continue
    }
    if (expiresAt !== undefined) entry.expiresAt = expiresAt
    entries.push(entry)
  }
  return entries
}
