import type { ChangesPush, LiveChange, RecordWithMeta, Tombstone, Uid } from '@tidesync/protocol'
import { tombstoneOf } from '../model/record.js'
import type { Filter } from '../model/scope.js'

/** One socket's live subscription to a model+where (with the socket user's scope). @internal */
export interface Subscription {
  id: string
  model: string
  filter: Filter
  send(push: ChangesPush): void
}

/**
 * What one subscription should receive of a batch of changes: an upsert when the record
 * matches after the change, a tombstone when it was deleted and matched before, an eviction
 * when it matched before and no longer does. Records that never matched are never named.
 */
export function pushFor(
  subscription: Subscription,
  changes: LiveChange[],
): Omit<ChangesPush, 'serverClock'> | null {
  const upserts: RecordWithMeta[] = []
  const deletes: Tombstone[] = []
  const evictions: Uid[] = []
  for (const change of changes) {
    const matchedBefore = change.before !== null && subscription.filter.matches(change.before)
    if (change.op === 'delete') {
      if (matchedBefore) deletes.push(tombstoneOf(change.uid, change.meta))
      continue
    }
    if (change.after && subscription.filter.matches(change.after))
      upserts.push({ record: change.after, meta: change.meta })
    else if (matchedBefore) evictions.push(change.uid)
  }
  if (upserts.length + deletes.length + evictions.length === 0) return null
  return { subscriptionId: subscription.id, model: subscription.model, upserts, deletes, evictions }
}

/** The subscriptions of this server's sockets, by model. @internal */
export class SubscriptionRegistry {
  private readonly byModel = new Map<string, Map<string, Subscription>>()

  add(subscription: Subscription): void {
    let map = this.byModel.get(subscription.model)
    if (!map) {
      map = new Map()
      this.byModel.set(subscription.model, map)
    }
    map.set(subscription.id, subscription)
  }

  remove(model: string, id: string): void {
    this.byModel.get(model)?.delete(id)
  }

  forModel(model: string): Iterable<Subscription> {
    return this.byModel.get(model)?.values() ?? []
  }

  get size(): number {
    let n = 0
    for (const map of this.byModel.values()) n += map.size
    return n
  }
}
