import type { Hlc } from '../records.js'
import { formatHlc, MAX_HLC_COUNTER, parseHlc } from './format.js'

/**
 * One writer's hybrid logical clock, on either side of the wire. `now()` makes a clock greater
 * than every one made or observed so far; `observe()` moves past a clock from elsewhere (a
 * `serverClock`, a clock stored by another tab).
 *
 * On the server, `receive()` takes a client's clock for a write: when its wall time is ahead of
 * the server's wall clock by more than `maxSkewMs` it is replaced by a fresh server clock (a
 * client whose clock runs in the future cannot win every conflict for ever); either way the
 * server clock moves past it, so every later `serverClock` orders after what clients wrote.
 */
export class HybridClock {
  private lastWall = 0
  private lastCounter = 0

  /**
   * @param node this writer's node id (see `isNodeId`)
   * @param wallClock the wall clock in ms since the epoch
   * @param maxSkewMs how far ahead of `wallClock` a received clock may be before `receive()`
   *   and `clampDate()` replace it. @default Infinity (never)
   */
  constructor(
    readonly node: string,
    private readonly wallClock: () => number,
    private readonly maxSkewMs: number = Number.POSITIVE_INFINITY,
  ) {}

  /** The next clock: greater than every clock made or observed so far. */
  now(): Hlc {
    const physical = this.wallClock()
    if (physical > this.lastWall) {
      this.lastWall = physical
      this.lastCounter = 0
    } else if (this.lastCounter < MAX_HLC_COUNTER) {
      this.lastCounter++
    } else {
      // The counter is full: borrow the next millisecond rather than overflow the 4 hex digits.
      this.lastWall++
      this.lastCounter = 0
    }
    return this.last()
  }

  /** The latest clock made or observed (with this node's id). */
  last(): Hlc {
    return formatHlc(this.lastWall, this.lastCounter, this.node)
  }

  /**
   * Moves this clock past `remote`, so that the next `now()` orders after it. Nothing and a
   * malformed clock are ignored (false).
   */
  observe(remote: Hlc | null | undefined): boolean {
    if (!remote) return false
    const parsed = parseHlc(remote)
    if (!parsed) return false
    this.advance(parsed.wallMs, parsed.counter)
    return true
  }

  /**
   * A writer's clock as this side will store it: unchanged, or (when too far ahead) replaced by
   * a fresh clock of this side. `clamped` says which. Throws a TypeError on a malformed clock
   * (callers validate first).
   */
  receive(clock: Hlc): { clock: Hlc; clamped: boolean } {
    const parsed = parseHlc(clock)
    if (!parsed) throw new TypeError(`not an HLC: ${clock}`)
    if (parsed.wallMs > this.wallClock() + this.maxSkewMs) return { clock: this.now(), clamped: true }
    this.advance(parsed.wallMs, parsed.counter)
    return { clock, clamped: false }
  }

  /** Clamps a plain writer's timestamp the same way (full reconcile's `updated_at`). */
  clampDate(date: Date): Date {
    const limit = this.wallClock() + this.maxSkewMs
    return date.getTime() > limit ? new Date(this.wallClock()) : date
  }

  private advance(wallMs: number, counter: number): void {
    if (wallMs > this.lastWall || (wallMs === this.lastWall && counter > this.lastCounter)) {
      this.lastWall = wallMs
      this.lastCounter = counter
    }
  }
}
