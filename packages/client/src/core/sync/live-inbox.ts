import type { ChangesPush, RecordWithMeta, Tombstone } from '@tidesync/protocol'
import { applyServerBatch } from '../apply-server.js'
import type { ModelInfo } from '../schema/model.js'
import type { SyncDeps } from './deps.js'
import { resolveEvictions } from './evictions.js'
import type { Subset } from './subsets.js'

/** One live push as it arrived, with the subset it was addressed to (undefined: already released). @internal */
export interface LiveArrival {
  push: ChangesPush
  model: ModelInfo
  subset: Subset | undefined
}

/**
 * Applies the server's live pushes in the order they arrived. A push that arrives while earlier
 * ones are being written waits, and the waiting pushes of one model are then written together
 * (one transaction per `chunkSize` records instead of one per push): a burst of 1,000 pushes
 * costs a few transactions, while a lone push is written at once.
 *
 * Why merging is safe: pushes carry whole records with their revision, so per record only the
 * newest state (upsert or tombstone) of the batch matters. Pushes with evictions are applied on
 * their own, in order, because an eviction carries no revision to compare.
 *
 * The echo of this client's own change (the state the answer to its push already stored, see
 * `OwnRevisions`) is dropped: a push of only echoes writes nothing.
 * @internal
 */
export class LiveInbox {
  private readonly waiting: LiveArrival[] = []
  private running = false

  constructor(
    private readonly deps: SyncDeps,
    private readonly onError: (error: unknown) => void,
  ) {}

  add(arrival: LiveArrival): void {
    this.waiting.push(arrival)
    if (!this.running) void this.drain()
  }

  private async drain(): Promise<void> {
    this.running = true
    try {
      while (this.waiting.length > 0) {
        try {
          await this.apply(this.takeBatch())
        } catch (error) {
          this.onError(error)
        }
      }
    } finally {
      this.running = false
    }
  }

  /** The oldest waiting push and the ones after it that can be written with it. */
  private takeBatch(): LiveArrival[] {
    const first = this.waiting.shift()!
    const batch = [first]
    if (first.push.evictions.length > 0) return batch
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!
      const sameTarget = next.model === first.model && Boolean(next.subset) === Boolean(first.subset)
      if (!sameTarget || next.push.evictions.length > 0) break
      batch.push(this.waiting.shift()!)
    }
    return batch
  }

  private async apply(batch: LiveArrival[]): Promise<void> {
    const { ctx, queue, ownRevisions } = this.deps
    const { model, subset } = batch[0]!
    const newest = new Map<string, { rev: number; upsert?: RecordWithMeta; tombstone?: Tombstone }>()
    for (const { push } of batch) {
      for (const upsert of push.upserts) {
        const held = newest.get(upsert.record.uid)
        if (!held || upsert.meta.rev > held.rev)
          newest.set(upsert.record.uid, { rev: upsert.meta.rev, upsert })
      }
      for (const tombstone of push.deletes) {
        const held = newest.get(tombstone.uid)
        if (!held || tombstone.rev >= held.rev) newest.set(tombstone.uid, { rev: tombstone.rev, tombstone })
      }
    }
    const upserts = [...newest.values()].flatMap((item) => (item.upsert ? [item.upsert] : []))
    const deletes = [...newest.values()].flatMap((item) => (item.tombstone ? [item.tombstone] : []))
    const evictions = batch.length === 1 ? batch[0]!.push.evictions : []
    const { evict, keep } =
      subset && evictions.length > 0
        ? await resolveEvictions(this.deps, model, subset, evictions)
        : { evict: [], keep: [] }
    await queue.run(() => {
      // An own change's echo: the answer to its push stored it (the queue applied that first).
      const echo = (uid: string, rev: number) => ownRevisions.isEcho(model, uid, rev)
      // A push for a subscription that was just dropped only updates records still held.
      return applyServerBatch(
        ctx,
        model,
        {
          deletes: deletes.filter((item) => !echo(item.uid, item.rev)),
          evict,
          upserts: [...upserts.filter((item) => !echo(item.record.uid, item.meta.rev)), ...keep],
        },
        { onlyKnown: !subset },
      )
    })
  }
}
