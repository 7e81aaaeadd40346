import type { ChangeOutcome, PushResult } from '@tidesync/protocol'
import type { Core } from '../core.js'
import { toTidesyncError } from '../db/map-error.js'
import { isRejection, TidesyncValidationError } from '../errors.js'
import { parseClock, parseDeltas, parseFields, parseUid, resolveModel } from '../validation/records.js'
import { expectObject, expectString, onlyKeys } from '../validation/shapes.js'
import { addToShape, type CallerItem, emptyShape, fitsBatch } from '../write/apply-batch.js'
import type { GroupCommitter } from '../write/group-commit.js'
import type { BatchOutcome, ChangeRequest } from '../write/staged-change.js'

const CHANGE_KEYS: Record<string, readonly string[]> = {
  create: ['id', 'model', 'uid', 'op', 'data', 'clock'],
  update: ['id', 'model', 'uid', 'op', 'patch', 'clock'],
  delete: ['id', 'model', 'uid', 'op', 'clock'],
  increment: ['id', 'model', 'uid', 'op', 'deltas', 'clock'],
}

function parseChange<TCtx>(core: Core<TCtx>, raw: Record<string, unknown>, path: string): ChangeRequest {
  const op = raw.op
  if (typeof op !== 'string' || !(op in CHANGE_KEYS)) {
    throw new TidesyncValidationError(
      'UNKNOWN_METHOD',
      'op must be create, update, delete or increment',
      `${path}.op`,
    )
  }
  onlyKeys(raw, CHANGE_KEYS[op]!, path)
  const model = resolveModel(core, raw.model, `${path}.model`)
  const m = model as ChangeRequest['model']
  const uid = parseUid(m, raw.uid, `${path}.uid`)
  const clock = core.hlc.receive(parseClock(raw.clock, `${path}.clock`)).clock
  switch (op) {
    case 'create':
      return { model: m, uid, op, clock, fields: parseFields(m, raw.data, `${path}.data`, 'create', uid) }
    case 'update':
      return { model: m, uid, op, clock, fields: parseFields(m, raw.patch, `${path}.patch`, 'update', uid) }
    case 'increment':
      return { model: m, uid, op, clock, deltas: parseDeltas(m, raw.deltas, `${path}.deltas`) }
    default:
      return { model: m, uid, op: 'delete', clock }
  }
}

/**
 * `sync:push`: applies the client's outbox in order, in batches of up to
 * `maxChangesPerTransaction` changes, each batch in one transaction (shared with other
 * clients' batches that wait at the same time: `GroupCommitter`) with the ids of its
 * changes recorded per client in that same transaction (see `applyBatch`) — a push retried
 * after a lost acknowledgement answers `duplicate` for what was applied and applies the rest
 * once. A change the server refuses for good (validation, scope, `canWrite`) is `rejected`
 * alone (validation before any transaction, the others in their own savepoint) and the others
 * still apply; a temporary failure fails the whole push (`UNAVAILABLE`): the batches committed
 * before it stay applied and remembered, the failed batch applied nothing.
 */
export async function push<TCtx>(
  core: Core<TCtx>,
  commits: GroupCommitter<TCtx>,
  request: unknown,
  ctx: TCtx,
): Promise<PushResult> {
  const input = expectObject(request, 'request')
  onlyKeys(input, ['clientId', 'changes'], '')
  const clientId = expectString(input.clientId, 'clientId', 200)
  if (!Array.isArray(input.changes))
    throw new TidesyncValidationError('BAD_REQUEST', 'must be an array', 'changes')
  if (input.changes.length > core.limits.maxChangesPerPush) {
    throw new TidesyncValidationError(
      'PAYLOAD_TOO_LARGE',
      `at most ${core.limits.maxChangesPerPush} changes per push`,
      'changes',
    )
  }
  const raws = input.changes.map((raw, i) => {
    const change = expectObject(raw, `changes[${i}]`)
    return { change, id: expectString(change.id, `changes[${i}].id`, 200) }
  })
  // Validate every change first: a malformed one is rejected without touching the database.
  const outcomes: Array<ChangeOutcome | undefined> = []
  const valid: Array<{ index: number; item: CallerItem<TCtx> }> = []
  for (const [i, { change, id }] of raws.entries()) {
    try {
      valid.push({ index: i, item: { id, req: parseChange(core, change, `changes[${i}]`), ctx, clientId } })
      outcomes.push(undefined)
    } catch (error) {
      const mapped = toTidesyncError(error)
      if (!isRejection(mapped)) throw mapped
      outcomes.push({ id, status: 'rejected', error: mapped.toWire() })
    }
  }
  for (const batch of batches(core as Core, valid, core.limits.maxChangesPerTransaction)) {
    let results: BatchOutcome[]
    try {
      results = await commits.submit(batch.map((b) => b.item))
    } catch (error) {
      throw toTidesyncError(error)
    }
    batch.forEach(({ index, item }, k) => {
      const result = results[k]!
      outcomes[index] =
        result.status === 'applied'
          ? { id: item.id, status: 'applied', meta: result.meta, record: result.record }
          : result.status === 'duplicate'
            ? { id: item.id, status: 'duplicate' }
            : { id: item.id, status: 'rejected', error: result.error.toWire() }
    })
  }
  return { outcomes: outcomes as ChangeOutcome[], serverClock: core.hlc.now() }
}

/** Consecutive runs of at most `size` changes that can share a transaction (see `fitsBatch`). */
function batches<TCtx, T extends { item: CallerItem<TCtx> }>(core: Core, items: T[], size: number): T[][] {
  const out: T[][] = []
  let batch: T[] = []
  let shape = emptyShape()
  for (const entry of items) {
    if (batch.length >= size || !fitsBatch(core, entry.item, shape)) {
      out.push(batch)
      batch = []
      shape = emptyShape()
    }
    batch.push(entry)
    addToShape(shape, entry.item)
  }
  if (batch.length > 0) out.push(batch)
  return out
}
