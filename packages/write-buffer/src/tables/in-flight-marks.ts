import { randomBytes } from 'node:crypto'
import type { Ipc, Json } from '@tidesync/ipc'

/** Marks of deliveries in flight: `hand-off:<expires at, ms>:<node>-<sequence>`. */
const IN_FLIGHT = 'hand-off:'

/** When an in-flight mark expires, or null for a settled mark (or none). */
export function inFlightUntil(token: Json | undefined): number | null {
  if (typeof token !== 'string' || !token.startsWith(IN_FLIGHT)) return null
  return Number(token.slice(IN_FLIGHT.length, token.indexOf(':', IN_FLIGHT.length)))
}

/**
 * The marks of rows with deferred writes, one IPC hash per group (`marksKey(group)`), field: the
 * row's key. A mark is in flight from `stage` until the delivery (or the rollback) settles it; a
 * settled mark is a fresh token per write, so a reader can tell that a row was written again
 * between two looks. Readers (the server's read overlay) also unmark rows with nothing pending.
 */
export class InFlightMarks {
  private readonly node = randomBytes(4).toString('hex')
  private sequence = 0

  constructor(
    private readonly ipc: Ipc,
    readonly keyOf: (group: string) => string,
    private readonly now: () => number,
  ) {}

  inFlight(expires: number): string {
    return `${IN_FLIGHT}${expires}:${this.node}-${++this.sequence}`
  }

  settledToken(): string {
    return `${this.now()}-${this.node}-${++this.sequence}`
  }

  all(group: string): Promise<Record<string, Json>> {
    return this.ipc.hgetall(this.keyOf(group))
  }

  get(group: string, key: string): Promise<Json | null> {
    return this.ipc.hget(this.keyOf(group), key)
  }

  /** The marks of `keys` (in their order, null for none), in one call. */
  async getMany(group: string, keys: string[]): Promise<Array<Json | null>> {
    if (keys.length === 0) return []
    return this.ipc.hmget(this.keyOf(group), ...keys)
  }

  async set(group: string, marks: Record<string, Json>): Promise<void> {
    if (Object.keys(marks).length > 0) await this.ipc.hset(this.keyOf(group), marks)
  }

  /**
   * Removes the marks of rows (key -> the mark they must still have), in two calls: those whose
   * mark changed meanwhile (a write marked them again) keep it.
   */
  async unmarkMany(group: string, marks: Map<string, Json>): Promise<void> {
    const keys = [...marks.keys()]
    if (keys.length === 0) return
    const current = await this.getMany(group, keys)
    const gone = keys.filter((key, i) => current[i] === marks.get(key))
    if (gone.length > 0) await this.ipc.hdel(this.keyOf(group), ...gone)
  }

  /** Removes a row's mark; with `ifToken`, only while the mark is still that one. */
  async unmark(group: string, key: string, ifToken?: Json): Promise<void> {
    if (ifToken !== undefined && (await this.get(group, key)) !== ifToken) return
    await this.ipc.hdel(this.keyOf(group), key)
  }
}
