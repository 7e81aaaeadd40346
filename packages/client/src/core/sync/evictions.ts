import type { RecordWithMeta } from '@tidesync/protocol'
import { fromWire } from '../schema/codec.js'
import type { ModelInfo } from '../schema/model.js'
import { matchesWhere } from '../where.js'
import type { SyncDeps } from './deps.js'
import type { Subset } from './subsets.js'

/**
 * Decides which records that left one subset really leave the device. When another active
 * subset of the same model may still hold a record, its current state is fetched and kept if it
 * matches one of them; otherwise it is evicted (no tombstone: it still exists on the server).
 */
export async function resolveEvictions(
  deps: SyncDeps,
  model: ModelInfo,
  from: Subset | undefined,
  uids: readonly string[],
): Promise<{ evict: string[]; keep: RecordWithMeta[] }> {
  const siblings = deps.subsets.siblings(from, model)
  if (uids.length === 0 || siblings.length === 0) return { evict: [...uids], keep: [] }
  const evict: string[] = []
  const keep: RecordWithMeta[] = []
  for (const uid of uids) {
    const answer = await deps.transport
      .request('service', { model: model.wireName, method: 'findUnique', args: { uid } })
      .catch(() => null)
    if (answer && !Array.isArray(answer) && 'record' in answer && !answer.meta.deleted_at) {
      const record = fromWire(model, answer.record)
      if (siblings.some((subset) => matchesWhere(model, subset.where.wire, record))) {
        keep.push(answer)
        continue
      }
    }
    evict.push(uid)
  }
  return { evict, keep }
}
