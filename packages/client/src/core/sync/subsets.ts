import { BehaviorSubject } from 'rxjs'
import type { TidesyncClientError } from '../errors.js'
import type { ModelInfo } from '../schema/model.js'
import type { NormalizedWhere } from '../where.js'

/** The sync state of one subset, as `collection.syncState$(where)` emits it. */
export interface SubsetState {
  /** A sync of this subset is running. */
  syncing: boolean
  /** At least one sync of this subset completed since it became active. */
  synced: boolean
  /** The error of the last sync of this subset, or null. */
  error: TidesyncClientError | null
}

/** One active (model, where): something in the app is watching it, so it is kept in sync. @internal */
export interface Subset {
  readonly key: string
  readonly model: ModelInfo
  readonly where: NormalizedWhere
  refs: number
  /** The server's id for the live subscription on the current connection. */
  subscriptionId: string | null
  /** Sync it at the next opportunity (new, or reconnected). */
  needsSync: boolean
  readonly state$: BehaviorSubject<SubsetState>
}

export function subsetKey(model: ModelInfo, where: NormalizedWhere): string {
  return `${model.key}|${where.key}`
}

/** The active subsets, reference-counted. @internal */
export class SubsetRegistry {
  private readonly subsets = new Map<string, Subset>()
  private readonly bySubscription = new Map<string, Subset>()

  /** Adds a reference; returns the subset and whether it is new. */
  acquire(model: ModelInfo, where: NormalizedWhere): { subset: Subset; created: boolean } {
    const key = subsetKey(model, where)
    const existing = this.subsets.get(key)
    if (existing) {
      existing.refs += 1
      return { subset: existing, created: false }
    }
    const subset: Subset = {
      key,
      model,
      where,
      refs: 1,
      subscriptionId: null,
      needsSync: true,
      state$: new BehaviorSubject<SubsetState>({ syncing: false, synced: false, error: null }),
    }
    this.subsets.set(key, subset)
    return { subset, created: true }
  }

  /** Drops a reference; returns true when it was the last one (the subset is gone). */
  release(subset: Subset): boolean {
    subset.refs -= 1
    if (subset.refs > 0 || this.subsets.get(subset.key) !== subset) return false
    this.subsets.delete(subset.key)
    if (subset.subscriptionId) this.bySubscription.delete(subset.subscriptionId)
    subset.state$.complete()
    return true
  }

  get(key: string): Subset | undefined {
    return this.subsets.get(key)
  }

  isActive(subset: Subset): boolean {
    return this.subsets.get(subset.key) === subset
  }

  all(): Subset[] {
    return [...this.subsets.values()]
  }

  /** The other active subsets of the same model. */
  siblings(subset: Subset | undefined, model: ModelInfo): Subset[] {
    return this.all().filter((other) => other.model === model && other !== subset)
  }

  bindSubscription(subset: Subset, subscriptionId: string): void {
    subset.subscriptionId = subscriptionId
    this.bySubscription.set(subscriptionId, subset)
  }

  bySubscriptionId(subscriptionId: string): Subset | undefined {
    return this.bySubscription.get(subscriptionId)
  }

  /** Marks the subsets whose last sync failed for the next one. */
  retryFailed(): void {
    for (const subset of this.subsets.values()) subset.needsSync ||= subset.state$.value.error !== null
  }

  /** Forgets every subscription (the connection is gone) and marks every subset for a sync. */
  resetConnection(): void {
    this.bySubscription.clear()
    for (const subset of this.subsets.values()) {
      subset.subscriptionId = null
      subset.needsSync = true
    }
  }

  patchState(subset: Subset, changes: Partial<SubsetState>): void {
    if (!this.isActive(subset)) return
    subset.state$.next({ ...subset.state$.value, ...changes })
  }
}
