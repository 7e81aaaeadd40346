import type { Hlc } from '../protocol.js'

/**
 * Hybrid logical clocks as strings: `<ISO-8601 UTC, ms>-<counter, 4 hex>-<node id>`, e.g.
 * `2026-11-23T13:45:12.345Z-0001-c7f3a9`. Fixed widths make string order the clock order.
 */
const HLC_PATTERN = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)-([0-9a-f]{4})-([A-Za-z0-9_]{1,32})$/

export interface ParsedHlc {
  wallMs: number
  counter: number
  node: string
}

/** The parts of an HLC, or null when the string is not one (or its date is not real). */
export function parseHlc(value: string): ParsedHlc | null {
  const match = HLC_PATTERN.exec(value)
  if (!match) return null
  const wallMs = Date.parse(match[1]!)
  if (!Number.isFinite(wallMs) || new Date(wallMs).toISOString() !== match[1]) return null
  return { wallMs, counter: Number.parseInt(match[2]!, 16), node: match[3]! }
}

export function formatHlc(wallMs: number, counter: number, node: string): Hlc {
  return `${new Date(wallMs).toISOString()}-${counter.toString(16).padStart(4, '0')}-${node}`
}

/** The wall-clock part of a valid HLC, in ms. */
export function hlcWallMs(value: Hlc): number {
  return Date.parse(value.slice(0, 24))
}

/** An HLC for a plain timestamp (used for the seed's ISO dates): the lowest clock at that ms. */
export function hlcFromDate(date: Date, node = '0'): Hlc {
  return formatHlc(date.getTime(), 0, node)
}

const MAX_COUNTER = 0xffff

/**
 * The server's clock. `now()` ticks it; `receive()` takes a client clock, clamps it when it is
 * ahead of the server's wall clock by more than `maxSkewMs`, and moves the server clock past
 * it, so every later server clock (sent back as `serverClock`) orders after what clients wrote.
 */
export class HybridClock {
  private lastWall = 0
  private lastCounter = 0

  constructor(
    readonly node: string,
    private readonly wallClock: () => number,
    private readonly maxSkewMs: number,
  ) {}

  now(): Hlc {
    const physical = this.wallClock()
    if (physical > this.lastWall) {
      this.lastWall = physical
      this.lastCounter = 0
    } else if (this.lastCounter < MAX_COUNTER) {
      this.lastCounter++
    } else {
      // The counter is full: borrow the next millisecond rather than overflow the 4 hex digits.
      this.lastWall++
      this.lastCounter = 0
    }
    return formatHlc(this.lastWall, this.lastCounter, this.node)
  }

  /**
   * A client clock as the server will store it: unchanged, or (when too far ahead) replaced by
   * a fresh server clock. `clamped` says which.
   */
  receive(clock: Hlc): { clock: Hlc; clamped: boolean } {
    const parsed = parseHlc(clock)
    if (!parsed) throw new TypeError(`not an HLC: ${clock}`)
    if (parsed.wallMs > this.wallClock() + this.maxSkewMs) return { clock: this.now(), clamped: true }
    if (
      parsed.wallMs > this.lastWall ||
      (parsed.wallMs === this.lastWall && parsed.counter > this.lastCounter)
    ) {
      this.lastWall = parsed.wallMs
      this.lastCounter = parsed.counter
    }
    return { clock, clamped: false }
  }

  /** Clamps a plain client timestamp the same way (full reconcile's `updated_at`). */
  clampDate(date: Date): Date {
    const limit = this.wallClock() + this.maxSkewMs
    return date.getTime() > limit ? new Date(this.wallClock()) : date
  }
}
