import { randomBytes } from 'node:crypto'
import {
  type FullSyncResult,
  HybridClock,
  isServiceMethod,
  type PullResult,
  type PushResult,
  type Reply,
} from '@tidesync/protocol'
import { guardPgPool } from '@tidesync/write-buffer'
import { lt, sql } from 'drizzle-orm'
import type { Core } from './core.js'
import { setupCapture } from './db/capture/install-capture.js'
import { toTidesyncError } from './db/map-error.js'
import { rowsOf } from './db/types.js'
import { TidesyncValidationError } from './errors.js'
import { fullReconcile } from './handlers/full.js'
import { deltaPull } from './handlers/pull.js'
import { push } from './handlers/push.js'
import { createModelService, type ModelService } from './handlers/service.js'
import { createPublisher } from './live/publisher.js'
import { defaultLogger } from './logger.js'
import { type ResolvedModel, resolveModels } from './model/resolve-models.js'
import { groupCommitTransactions, resolveLimits, type TidesyncOptions } from './options.js'
import { tidesyncTables } from './schema/metadata.js'
import type { AuthContext } from './types.js'
import { assertSafePayload, jsonByteLength } from './validation/forbidden-keys.js'
import { expectObject, onlyKeys } from './validation/shapes.js'
import { GroupCommitter } from './write/group-commit.js'
import { DirectWrites, type PendingWrites } from './write/pending-writes.js'
import { WriteBufferWrites } from './write/write-buffer-writes.js'

/** The sync service without a transport: use it from an HTTP framework, or through `installTidesync`. */
export interface Tidesync<TCtx = AuthContext> {
  /** Per-model services, scoped to the `ctx` you pass. Throw `TidesyncError`. */
  services: Record<string, ModelService<TCtx>>
  /** `sync:full`. Throws `TidesyncError`. */
  fullSync(request: unknown, ctx: TCtx): Promise<FullSyncResult>
  /** `sync:pull`. Throws `TidesyncError`. */
  pull(request: unknown, ctx: TCtx): Promise<PullResult>
  /** `sync:push`. Throws `TidesyncError`. */
  push(request: unknown, ctx: TCtx): Promise<PushResult>
  /**
   * One request as the socket receives it: size and key checks, routing, and any error as
   * `{ error: { code, message } }`. Never throws. Good for an HTTP route:
   * `app.post('/tidesync/:event', async (req, res) => res.json(await tidesync.handle(req.params.event, req.body, ctx)))`.
   */
  handle(event: string, payload: unknown, ctx: TCtx): Promise<Reply<unknown>>
  /**
   * Deletes change-log entries and remembered push ids older than `olderThanMs`. Pull
   * checkpoints older than what was pruned then answer `CHECKPOINT_EXPIRED` (the client runs a
   * full reconcile), and a push retried after that long may apply twice.
   */
  pruneChangeLog(options: { olderThanMs: number }): Promise<{ changes: number; appliedIds: number }>
  /**
   * Hands to the write buffer the counter deltas of committed changes that a stopped server
   * did not hand over (rows of `tidesync_handoffs` older than `minAgeMs`, default 5 s), at most
   * once each. Servers do it by themselves (readers of such a record, a sweep after their own
   * hand-offs, and `installTidesync` with `minAgeMs: 0` before it serves); call it before a
   * final flush, and at start-up with `{ minAgeMs: 0 }` when you serve through
   * `createTidesync` (the memory IPC store of a restarted process lost the marks that make
   * readers wait for owed deltas). Returns how many it handed over.
   */
  recoverHandOffs(options?: { minAgeMs?: number }): Promise<number>
  /**
   * Sets change capture up for the configured models (see the README, "Change capture"):
   * triggers that log every committed write to their tables, whoever makes it. Idempotent and
   * cheap when in place; safe with several servers at once. Throws `TidesyncConfigError` when a
   * table is missing a column of its model. `installTidesync` calls it (unless `capture: false`).
   */
  setupCapture(): Promise<void>
  /** @internal */
  readonly core: Core<TCtx>
}

/**
 * Creates the sync service on a drizzle database and an IPC instance.
 *
 * @example
 * const tidesync = createTidesync({ db, ipc, models: { todos: { table: todos } } })
 * const page = await tidesync.services.todos.findMany({ where: { done: false } }, ctx)
 */
export function createTidesync<TCtx = AuthContext>(
  options: TidesyncOptions<TCtx>,
  transport: { socketLimit?: number } = {},
): Tidesync<TCtx> {
  const logger = options.logger ?? defaultLogger
  // A lost PostgreSQL connection must fail its query, not end the process.
  guardPgPool(options.db, logger)
  const now = options.now ?? Date.now
  const keyPrefix = options.keyPrefix ?? 'tidesync:'
  const models = resolveModels(options.models, options.writeBuffer !== undefined)
  const tables = options.tables ?? tidesyncTables
  const pending: PendingWrites = options.writeBuffer
    ? new WriteBufferWrites(
        options.writeBuffer,
        options.ipc,
        options.db,
        keyPrefix,
        logger,
        now,
        tables,
        models as unknown as Map<string, ResolvedModel<unknown>>,
      )
    : new DirectWrites()
  const core: Core<TCtx> = {
    db: options.db,
    ipc: options.ipc,
    tables,
    models,
    hlc: new HybridClock(
      options.nodeId ?? randomBytes(4).toString('hex'),
      now,
      options.maxClockSkewMs ?? 60_000,
    ),
    pending,
    logger,
    limits: resolveLimits(options, transport.socketLimit),
    keyPrefix,
    now,
    publish: createPublisher(options.ipc, keyPrefix, logger),
  }

  const commits = new GroupCommitter(
    core,
    core.limits.maxChangesPerTransaction,
    groupCommitTransactions(options.db, options.groupCommit),
  )
  const services: Record<string, ModelService<TCtx>> = Object.create(null)
  for (const model of models.values()) services[model.name] = createModelService(core, model, commits)

  async function dispatch(event: string, payload: unknown, ctx: TCtx): Promise<unknown> {
    switch (event) {
      case 'sync:full':
        return fullReconcile(core, payload, ctx)
      case 'sync:pull':
        return deltaPull(core, payload, ctx)
      case 'sync:push':
        return push(core, commits, payload, ctx)
      case 'service': {
        const request = expectObject(payload, 'request')
        onlyKeys(request, ['model', 'method', 'args'], '')
        if (typeof request.model !== 'string' || !models.has(request.model)) {
          throw new TidesyncValidationError(
            'UNKNOWN_MODEL',
            `unknown model ${JSON.stringify(String(request.model).slice(0, 64))}`,
            'model',
          )
        }
        const method = request.method
        if (!isServiceMethod(method)) {
          throw new TidesyncValidationError(
            'UNKNOWN_METHOD',
            `unknown method ${JSON.stringify(String(method).slice(0, 64))}`,
            'method',
          )
        }
        const service = services[request.model]!
        return service[method](request.args as never, ctx)
      }
      default:
        throw new TidesyncValidationError(
          'UNKNOWN_METHOD',
          `unknown event ${JSON.stringify(event.slice(0, 64))}`,
        )
    }
  }

  return {
    services,
    core,
    fullSync: (request, ctx) => fullReconcile(core, request, ctx),
    pull: (request, ctx) => deltaPull(core, request, ctx),
    push: (request, ctx) => push(core, commits, request, ctx),
    recoverHandOffs: (options) => pending.recoverHandOffs(options?.minAgeMs),
    setupCapture: () => setupCapture(core, core.models.values() as Iterable<ResolvedModel<unknown>>),

    async handle(event, payload, ctx) {
      try {
        const size = jsonByteLength(payload)
        if (size > core.limits.maxMessageBytes) {
          throw new TidesyncValidationError(
            'PAYLOAD_TOO_LARGE',
            `${size} bytes, at most ${core.limits.maxMessageBytes}`,
          )
        }
        assertSafePayload(payload)
        return { result: await dispatch(event, payload, ctx) }
      } catch (error) {
        const mapped = toTidesyncError(error)
        if (mapped.code === 'INTERNAL') logger.error(`${event} failed`, error)
        else if (mapped.code === 'UNAVAILABLE') logger.warn(`${event}: ${mapped.message}`, mapped.cause)
        return { error: mapped.toWire() }
      }
    },

    async pruneChangeLog({ olderThanMs }) {
      const { changes, applied, state } = core.tables
      const cutoff = new Date(now() - olderThanMs)
      return core.db.transaction(async (tx) => {
        const pruned = rowsOf<{ model: string; rev: string | number; n: string | number }>(
          await tx.execute(sql`
            WITH deleted AS (DELETE FROM ${changes} WHERE ${lt(changes.committedAt, cutoff)} RETURNING model, rev)
            SELECT model, max(rev) AS rev, count(*) AS n FROM deleted GROUP BY model`),
        )
        let total = 0
        for (const row of pruned) {
          total += Number(row.n)
          await tx
            .insert(state)
            .values({ key: `pruned:${row.model}`, value: Number(row.rev) })
            .onConflictDoUpdate({
              target: state.key,
              set: { value: sql`greatest(${state.value}, excluded.value)` },
            })
        }
        const ids = await tx
          .delete(applied)
          .where(lt(applied.appliedAt, cutoff))
          .returning({ id: applied.changeId })
        return { changes: total, appliedIds: ids.length }
      })
    },
  }
}
