import type { ModelInfo } from '../schema/model.js'

/**
 * The server revisions that the answers to this client's own pushes stored, per record. The
 * server also sends such a change to the writer's own live subscriptions; that echo carries the
 * revision the answer already stored, so the live inbox drops it without touching the database
 * (no second transaction, no second emission of the writer's live queries). A revision names
 * one server state of a record, so an entry never goes stale in a harmful way: a state with the
 * same revision is the same state, and an older one would be ignored anyway. Bounded: past
 * `limit` records the oldest entries are forgotten (their echoes are then merged as before).
 * @internal
 */
export class OwnRevisions {
  private readonly revs = new Map<string, number>()

  constructor(private readonly limit = 10_000) {}

  /** The answer to a push left `rev` stored for the record. */
  stored(model: ModelInfo, uid: string, rev: number): void {
    const key = `${model.key}|${uid}`
    this.revs.delete(key)
    this.revs.set(key, rev)
    if (this.revs.size > this.limit) this.revs.delete(this.revs.keys().next().value!)
  }

  /** Whether a server state with `rev` is one the answer to an own push already stored. */
  isEcho(model: ModelInfo, uid: string, rev: number): boolean {
    return this.revs.get(`${model.key}|${uid}`) === rev
  }
}
