import type { FullSyncResult, RecordWithMeta, Where } from '@tidesync/protocol'
import { hlcFromDate } from '@tidesync/protocol'
import type { Core } from '../core.js'
import { withSyncLock } from '../db/sync-lock.js'
import type { TidesyncTx } from '../db/types.js'
import { TidesyncError } from '../errors.js'
import {
  type MetaRow,
  metaToWire,
  rowToWire,
  syntheticMeta,
  tombstoneOf,
  toTombstone,
} from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { buildFilter, type Filter } from '../model/scope.js'
import { logCheckpoint } from '../read/checkpoint.js'
import { readReconcileState } from '../read/reconcile-read.js'
import { type ParsedClientMeta, parseMetadataDict, resolveModel } from '../validation/records.js'
import { expectObject, onlyKeys } from '../validation/shapes.js'
import { stageChange } from '../write/apply-change.js'
import { commitChanges } from '../write/commit.js'
import { emptyState } from '../write/current-state.js'
import { retryOnPendingChange } from '../write/pending-writes.js'
import type { StagedChange } from '../write/staged-change.js'

/**
 * `sync:full`: the seed's reconcile with its defects fixed. The client sends its metadata
 * dictionary `{ uid -> { created_at, updated_at, deleted_at } }` for a model+where; under the
 * model+where's IPC lock the server compares it with the records in the database in a constant
 * number of queries (never one per uid; see reconcile-read.ts), then decides per uid:
 *
 * | server \ client            | absent      | has it                        | tombstone                         |
 * |----------------------------|-------------|-------------------------------|-----------------------------------|
 * | matches where+scope        | addClient   | newer side wins: updateClient / updateDatabase | deleted on the server -> deleteClient |
 * | tombstone                  | -           | deleteClient (never resurrected) | deleteClient                    |
 * | exists, no longer matches  | -           | evictClient (not deleted)     | deleted if in scope, else evict   |
 * | unknown                    | -           | addDatabase                   | deleteClient (confirmed)          |
 *
 * No `cutoffDate`: tombstones say what was deleted. Client timestamps ahead of the server's
 * clock by more than `maxClockSkewMs` are clamped. Rows written outside tidesync (no metadata)
 * get their metadata here (repair). Returns a revision checkpoint for the next delta pull.
 */
export async function fullReconcile<TCtx>(
  core: Core<TCtx>,
  request: unknown,
  ctx: TCtx,
): Promise<FullSyncResult> {
  const input = expectObject(request, 'request')
  onlyKeys(input, ['model', 'where', 'metadata'], '')
  const model = resolveModel(core, input.model)
  const filter = buildFilter(model, input.where as Where | undefined, ctx)
  const clientMeta = parseMetadataDict(
    model as ResolvedModel<unknown>,
    input.metadata,
    core.limits.maxMetadataEntries,
  )
  return withSyncLock(core as Core, filter.key, () => reconcile(core, model, filter, clientMeta, ctx))
}

async function reconcile<TCtx>(
  core: Core<TCtx>,
  model: ResolvedModel<TCtx>,
  filter: Filter,
  clientMeta: Map<string, ParsedClientMeta>,
  ctx: TCtx,
): Promise<FullSyncResult> {
  const c = core as Core
  const m = model as ResolvedModel<unknown>
  const state = await readReconcileState(c, m, filter, clientMeta)
  await repairMissingMeta(c, m, state.rows)

  const result: FullSyncResult = {
    addClient: [],
    updateClient: [],
    deleteClient: [],
    evictClient: [],
    addDatabase: [],
    updateDatabase: [],
    checkpoint: logCheckpoint(state.checkpoint),
    serverClock: '',
  }
  const clientDeletes: Array<{ uid: string; deletedAt: Date; fallback: RecordWithMeta | null }> = []
  for (const { row, meta } of state.rows) {
    const uid = String(row.uid)
    const client = clientMeta.get(uid)
    const record = (): RecordWithMeta => ({ record: rowToWire(m, row), meta: metaToWire(meta!) })
    if (!client) {
      result.addClient.push(record())
    } else if (client.deletedAt) {
      clientDeletes.push({ uid, deletedAt: client.deletedAt, fallback: record() })
    } else {
      const clientTime = core.hlc.clampDate(client.updatedAt).getTime()
      const serverTime = meta!.updatedAt.getTime()
      if (clientTime > serverTime) result.updateDatabase.push(uid)
      else if (clientTime < serverTime) result.updateClient.push(record())
    }
  }

  for (const outside of state.outside) {
    const client = clientMeta.get(outside.uid)!
    if (outside.meta?.deletedAt || (outside.meta && !outside.rowExists)) {
      result.deleteClient.push(toTombstone(outside.meta))
    } else if (outside.rowExists) {
      if (client.deletedAt && outside.inScope)
        clientDeletes.push({ uid: outside.uid, deletedAt: client.deletedAt, fallback: null })
      else result.evictClient.push(outside.uid)
    } else if (client.deletedAt) {
      result.deleteClient.push({ uid: outside.uid, deleted_at: client.deletedAt.toISOString(), rev: 0 })
    } else {
      result.addDatabase.push(outside.uid)
    }
  }

  if (clientDeletes.length > 0) await applyClientDeletes(core, model, filter, clientDeletes, ctx, result)
  result.serverClock = core.hlc.now()
  return result
}

/** Gives rows written outside tidesync their metadata (and a revision, so deltas see them). */
async function repairMissingMeta(
  core: Core,
  model: ResolvedModel<unknown>,
  rows: Array<{ row: Record<string, unknown>; meta: MetaRow | null }>,
): Promise<void> {
  const missing = rows.filter((r) => r.meta === null)
  if (missing.length === 0) return
  const now = new Date(core.now())
  const staged: StagedChange[] = missing.map(({ row }) => ({
    model,
    uid: String(row.uid),
    status: 'written',
    op: 'upsert',
    before: emptyState(),
    after: { row, meta: syntheticMeta(model, String(row.uid), now) },
  }))
  await commitChanges(core, async () => ({ staged, result: undefined }))
  missing.forEach((r, i) => {
    r.meta = staged[i]!.after.meta
  })
}

/**
 * Applies the client's tombstones in one transaction (the seed's deleteDatabase). A delete the
 * server refuses (scope, `canWrite`) is rolled back alone (savepoint) and the record goes back
 * to the client instead.
 */
async function applyClientDeletes<TCtx>(
  core: Core<TCtx>,
  model: ResolvedModel<TCtx>,
  filter: Filter,
  deletes: Array<{ uid: string; deletedAt: Date; fallback: RecordWithMeta | null }>,
  ctx: TCtx,
  result: FullSyncResult,
): Promise<void> {
  const m = model as ResolvedModel<unknown>
  const sorted = [...deletes].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0))
  const { changes, result: refused } = await retryOnPendingChange(async () => {
    const pending = await core.pending.snapshot(
      m,
      sorted.map((item) => item.uid),
    )
    return commitChanges(core as Core, async (tx: TidesyncTx) => {
      const staged: StagedChange[] = []
      const refused: Array<(typeof deletes)[number]> = []
      for (const item of sorted) {
        const clock = core.hlc.receive(hlcFromDate(core.hlc.clampDate(item.deletedAt), 'client')).clock
        try {
          const change = await tx.transaction((sp) =>
            stageChange(core, sp, { model: m, uid: item.uid, op: 'delete', clock }, ctx, {
              scopeSql: filter.scopeSql,
              matchesScope: filter.matchesScope,
              pending: pending.get(item.uid),
            }),
          )
          staged.push(change)
        } catch (error) {
          if (!(error instanceof TidesyncError) || (error.code !== 'FORBIDDEN' && error.code !== 'NOT_FOUND'))
            throw error
          refused.push(item)
        }
      }
      return { staged, result: refused }
    })
  })
  for (const change of changes) result.deleteClient.push(tombstoneOf(change.uid, change.meta))
  for (const item of refused) {
    if (item.fallback) result.updateClient.push(item.fallback)
    else result.evictClient.push(item.uid)
  }
}
