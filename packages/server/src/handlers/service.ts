import type { Hlc, JsonValue, RecordWithMeta, Tombstone, Uid, Where } from '@tidesync/protocol'
import { eq } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import type { Core } from '../core.js'
import { toTidesyncError } from '../db/map-error.js'
import { TidesyncError } from '../errors.js'
import { tombstoneOf, withMeta } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { buildFilter } from '../model/scope.js'
import { readRecords } from '../read/records.js'
import { parseClock, parseFields, parseUid } from '../validation/records.js'
import { expectObject, onlyKeys, optionalPositiveInt } from '../validation/shapes.js'
import type { GroupCommitter } from '../write/group-commit.js'
import type { ChangeRequest } from '../write/staged-change.js'

/**
 * The per-model services (the seed's findUnique / findMany / createWithMeta / updateWithMeta /
 * deleteWithMeta), scoped to the caller. Arguments are wire JSON, validated here, so an HTTP
 * route can pass a request body straight in.
 */
export interface ModelService<TCtx> {
  findUnique(args: { uid: Uid }, ctx: TCtx): Promise<RecordWithMeta | null>
  findMany(args: { where?: Where; limit?: number }, ctx: TCtx): Promise<RecordWithMeta[]>
  /** An upsert: a new uid is inserted, an existing one merged, a deleted one re-created. */
  create(
    args: { uid?: Uid; data: Record<string, JsonValue>; clock?: Hlc },
    ctx: TCtx,
  ): Promise<RecordWithMeta | Tombstone>
  /** Returns the tombstone when the record was deleted meanwhile (deletes win). */
  update(
    args: { uid: Uid; patch: Record<string, JsonValue>; clock?: Hlc },
    ctx: TCtx,
  ): Promise<RecordWithMeta | Tombstone>
  /** Keeps a tombstone, so that the uid is never resurrected by a stale client. */
  delete(args: { uid: Uid; clock?: Hlc }, ctx: TCtx): Promise<Tombstone>
}

function clockOf<TCtx>(core: Core<TCtx>, value: unknown, path: string): string {
  if (value === undefined || value === null) return core.hlc.now()
  return core.hlc.receive(parseClock(value, path)).clock
}

export function createModelService<TCtx>(
  core: Core<TCtx>,
  model: ResolvedModel<TCtx>,
  commits: GroupCommitter<TCtx>,
): ModelService<TCtx> {
  const m = model as ResolvedModel<unknown>

  /**
   * One write: the same entry as a push (a batch of one, without a change id to remember),
   * sharing a transaction with other callers' waiting writes (group commit), published after
   * the commit. A refusal is thrown.
   */
  async function write(req: ChangeRequest, ctx: TCtx): Promise<RecordWithMeta | Tombstone> {
    const [outcome] = await commits.submit([{ id: req.uid, req, ctx }])
    if (outcome?.status === 'rejected') throw outcome.error
    if (outcome?.status !== 'applied') throw new TidesyncError('INTERNAL', 'a service write was not applied')
    if (outcome.record) return { record: outcome.record, meta: outcome.meta }
    return tombstoneOf(req.uid, outcome.meta)
  }

  const service: ModelService<TCtx> = {
    async findUnique(args, ctx) {
      const input = expectObject(args, 'args')
      onlyKeys(input, ['uid'], 'args')
      const uid = parseUid(m, input.uid, 'args.uid')
      const filter = buildFilter(model, undefined, ctx)
      const [found] = await readRecords(core as Core, m, filter, { extra: eq(model.uid, uid), limit: 1 })
      if (!found) return null
      return withMeta(m, found.row, found.meta, new Date(core.now()))
    },

    async findMany(args, ctx) {
      const input = expectObject(args ?? {}, 'args')
      onlyKeys(input, ['where', 'limit'], 'args')
      const limit =
        optionalPositiveInt(input.limit, 'args.limit', core.limits.maxFindManyRows) ??
        core.limits.maxFindManyRows
      const filter = buildFilter(model, input.where as Where | undefined, ctx)
      const rows = await readRecords(core as Core, m, filter, { limit })
      const now = new Date(core.now())
      return rows.map(({ row, meta }) => withMeta(m, row, meta, now))
    },

    async create(args, ctx) {
      const input = expectObject(args, 'args')
      onlyKeys(input, ['uid', 'data', 'clock'], 'args')
      const uid = input.uid === undefined ? uuidv7() : parseUid(m, input.uid, 'args.uid')
      const fields = parseFields(m, input.data, 'args.data', 'create', uid)
      return write(
        { model: m, uid, op: 'create', fields, clock: clockOf(core, input.clock, 'args.clock') },
        ctx,
      )
    },

    async update(args, ctx) {
      const input = expectObject(args, 'args')
      onlyKeys(input, ['uid', 'patch', 'clock'], 'args')
      const uid = parseUid(m, input.uid, 'args.uid')
      const fields = parseFields(m, input.patch, 'args.patch', 'update', uid)
      return write(
        { model: m, uid, op: 'update', fields, clock: clockOf(core, input.clock, 'args.clock') },
        ctx,
      )
    },

    async delete(args, ctx) {
      const input = expectObject(args, 'args')
      onlyKeys(input, ['uid', 'clock'], 'args')
      const uid = parseUid(m, input.uid, 'args.uid')
      const result = await write(
        { model: m, uid, op: 'delete', clock: clockOf(core, input.clock, 'args.clock') },
        ctx,
      )
      if ('record' in result) throw new TidesyncError('INTERNAL', 'delete left the record in place')
      return result
    },
  }
  return mapErrors(service)
}

/** Every method throws a `TidesyncError` (database errors mapped: constraint, unavailable...). */
function mapErrors<TCtx>(service: ModelService<TCtx>): ModelService<TCtx> {
  const mapped = {} as Record<string, unknown>
  for (const [name, method] of Object.entries(service) as Array<
    [string, (args: unknown, ctx: TCtx) => Promise<unknown>]
  >) {
    mapped[name] = async (args: unknown, ctx: TCtx) => {
      try {
        return await method(args, ctx)
      } catch (error) {
        throw toTidesyncError(error)
      }
    }
  }
  return mapped as unknown as ModelService<TCtx>
}
