import type { Core } from '../core.js'
import { toTidesyncError } from '../db/map-error.js'
import type { TidesyncTx } from '../db/types.js'
import { TidesyncValidationError } from '../errors.js'
import type { ChangeOutcome, PushResult } from '../protocol.js'
import { parseClock, parseDeltas, parseFields, parseUid, resolveModel } from '../validation/records.js'
import { expectObject, expectString, onlyKeys } from '../validation/shapes.js'
import { metaToWire } from '../wire/serialize.js'
import { applyOne } from '../write/apply-one.js'
import type { ChangeRequest } from '../write/staged-change.js'

/** Codes that refuse one change for good; anything else fails the whole push (retry later). */
const REJECTING = new Set([
  'BAD_REQUEST',
  'UNKNOWN_MODEL',
  'UNKNOWN_METHOD',
  'UNKNOWN_COLUMN',
  'INVALID_TYPE',
  'INVALID_DATE',
  'FORBIDDEN_KEY',
  'FORBIDDEN',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
])

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
 * `sync:push`: applies the client's outbox in order, each change in its own transaction with
 * its id recorded per client in that same transaction — a push retried after a lost
 * acknowledgement answers `duplicate` for what was applied and applies the rest once. A change
 * the server refuses for good is `rejected` (the others still apply); a temporary failure
 * fails the whole push (`UNAVAILABLE`), and what was applied before it stays remembered.
 */
export async function push<TCtx>(core: Core<TCtx>, request: unknown, ctx: TCtx): Promise<PushResult> {
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
  const { applied } = core.tables
  const outcomes: ChangeOutcome[] = []
  for (const [i, { change, id }] of raws.entries()) {
    try {
      const req = parseChange(core, change, `changes[${i}]`)
      const recordId = async (tx: TidesyncTx) => {
        const inserted = await tx
          .insert(applied)
          .values({ clientId, changeId: id })
          .onConflictDoNothing()
          .returning({ changeId: applied.changeId })
        return inserted.length > 0
      }
      const model = core.models.get(req.model.name)!
      const committed = await applyOne(core, model, req, ctx, recordId)
      outcomes.push(
        committed
          ? { id, status: 'applied', meta: metaToWire(committed.meta), record: committed.after }
          : { id, status: 'duplicate' },
      )
    } catch (error) {
      const mapped = toTidesyncError(error)
      if (!REJECTING.has(mapped.code)) throw mapped
      outcomes.push({ id, status: 'rejected', error: mapped.toWire() })
    }
  }
  return { outcomes, serverClock: core.hlc.now() }
}
