import type { Hlc, IsoDate } from '../records.js'

/**
 * Hybrid logical clocks as strings: `<ISO-8601 UTC, ms, 24 chars>-<counter, 4 lowercase
 * hex>-<node id>`, e.g. `2026-11-23T13:45:12.345Z-0001-c7f3a9`. Fixed widths make string order
 * the clock order: the wall part keeps clocks close to real time, the counter orders events
 * within one millisecond, the node id breaks ties between writers.
 *
 * Node ids are 1 to 32 characters of `[A-Za-z0-9_]` on both sides. The client once accepted only
 * `[0-9a-z]+` and the server `[A-Za-z0-9_]{1,32}`; the server's rule is the one PROTOCOL.md
 * states, and the one that must hold for both, because each side parses the other's clocks: a
 * client that refused a server clock such as `…-0000-A` (a server with `nodeId: 'A'`) silently
 * stopped moving past `serverClock`. Every clock either side has stored still parses: clients
 * make 6 lowercase hex digits (`randomNodeId()`), servers 8 by default, and the server has
 * always refused client clocks outside this rule.
 */
const HLC_PATTERN = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)-([0-9a-f]{4})-([A-Za-z0-9_]{1,32})$/
const NODE_ID_PATTERN = /^[A-Za-z0-9_]{1,32}$/

/** The largest counter: 4 hex digits. */
export const MAX_HLC_COUNTER = 0xffff

export interface ParsedHlc {
  /** The wall-clock part, in ms since the epoch. */
  wallMs: number
  counter: number
  node: string
}

/**
 * The parts of an HLC, or null when the string is not one. The date must be real and written
 * the way `toISOString()` writes it (`2026-02-30…` or `…T24:00…` are refused, though
 * `Date.parse` rolls them over): only then does string order stay time order.
 */
export function parseHlc(value: string): ParsedHlc | null {
  const match = HLC_PATTERN.exec(value)
  if (!match) return null
  const wallMs = Date.parse(match[1]!)
  if (!Number.isFinite(wallMs) || new Date(wallMs).toISOString() !== match[1]) return null
  return { wallMs, counter: Number.parseInt(match[2]!, 16), node: match[3]! }
}

/** True when `value` is a well-formed HLC. */
export function isHlc(value: unknown): value is Hlc {
  return typeof value === 'string' && parseHlc(value) !== null
}

export function formatHlc(wallMs: number, counter: number, node: string): Hlc {
  return `${new Date(wallMs).toISOString()}-${counter.toString(16).padStart(4, '0')}-${node}`
}

/** The wall-clock part of a valid HLC, in ms. */
export function hlcWallMs(value: Hlc): number {
  return Date.parse(value.slice(0, 24))
}

/** The wall-clock part of a valid HLC as an ISO string (its first 24 characters). */
export function hlcIso(value: Hlc): IsoDate {
  return value.slice(0, 24)
}

/** An HLC for a plain timestamp (used for the seed's ISO dates): the lowest clock at that ms. */
export function hlcFromDate(date: Date, node = '0'): Hlc {
  return formatHlc(date.getTime(), 0, node)
}

/** Orders two valid HLCs (negative, 0, positive): plain string order, as the format intends. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** True when `value` can be the node id of an HLC: 1 to 32 characters of `[A-Za-z0-9_]`. */
export function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && NODE_ID_PATTERN.test(value)
}

/**
 * A random node id of `bytes` random bytes as lowercase hex (clients use 3: 6 characters, as in
 * the protocol's example; servers 4). Uses Web Crypto, present in browsers and Node.
 */
export function randomNodeId(bytes = 3): string {
  const random = new Uint8Array(bytes)
  globalThis.crypto.getRandomValues(random)
  return Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('')
}
