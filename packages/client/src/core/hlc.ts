import type { Hlc } from '@tidesync/server/protocol'

/**
 * Hybrid logical clocks in the protocol's format:
 * `<ISO-8601 UTC with ms, 24 chars>-<counter, 4 lowercase hex>-<node id>`.
 * They compare as plain strings; the wall part keeps them close to real time, the counter
 * orders events within one millisecond, the node id breaks ties between writers.
 */

const MAX_COUNTER = 0xffff
const HLC_PATTERN = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)-([0-9a-f]{4})-([0-9a-z]+)$/

export interface HlcParts {
  wall: number
  counter: number
  node: string
}

export function parseHlc(value: string): HlcParts | null {
  const match = HLC_PATTERN.exec(value)
  if (!match) return null
  const wall = Date.parse(match[1]!)
  if (Number.isNaN(wall)) return null
  return { wall, counter: Number.parseInt(match[2]!, 16), node: match[3]! }
}

export function formatHlc(parts: HlcParts): Hlc {
  return `${new Date(parts.wall).toISOString()}-${parts.counter.toString(16).padStart(4, '0')}-${parts.node}`
}

/** The wall time of an HLC as an ISO string (its first 24 characters). */
export function hlcIso(value: Hlc): string {
  return value.slice(0, 24)
}

/** A random node id: 6 lowercase hex characters, as in the protocol's example. */
export function randomNodeId(): string {
  const bytes = new Uint8Array(3)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** One writer's clock. `tick()` makes a new timestamp, `observe()` moves past a received one. */
export class HlcClock {
  private wall = 0
  private counter = 0

  constructor(
    readonly node: string,
    private readonly now: () => number,
  ) {}

  /** A timestamp greater than every one made or observed so far. */
  tick(): Hlc {
    const now = this.now()
    if (now > this.wall) {
      this.wall = now
      this.counter = 0
    } else if (this.counter < MAX_COUNTER) {
      this.counter += 1
    } else {
      // The counter is full: borrow the next millisecond rather than repeat a timestamp.
      this.wall += 1
      this.counter = 0
    }
    return formatHlc({ wall: this.wall, counter: this.counter, node: this.node })
  }

  /** Moves the clock past `remote` (a server clock or a clock stored by another tab). */
  observe(remote: Hlc | null | undefined): void {
    if (!remote) return
    const parts = parseHlc(remote)
    if (!parts) return
    if (parts.wall > this.wall || (parts.wall === this.wall && parts.counter > this.counter)) {
      this.wall = parts.wall
      this.counter = parts.counter
    }
  }

  /** The latest timestamp made or observed. */
  last(): Hlc {
    return formatHlc({ wall: this.wall, counter: this.counter, node: this.node })
  }
}
