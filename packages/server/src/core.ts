import type { Ipc } from '@tidesync/ipc'
import type { HybridClock, LiveChange } from '@tidesync/protocol'
import type { ResolvedModel } from './model/resolve-models.js'
import type { TidesyncTables } from './schema/metadata.js'
import type { Logger, TidesyncDb } from './types.js'
import type { PendingWrites } from './write/pending-writes.js'

/** Resolved limits, every default applied. @internal */
export interface Limits {
  maxMetadataEntries: number
  maxChangesPerPush: number
  maxChangesPerTransaction: number
  maxMessageBytes: number
  pageSize: number
  maxPageSize: number
  maxFindManyRows: number
  maxSubscriptionsPerSocket: number
  syncLockTtlSeconds: number
  syncLockWaitMs: number
}

/**
 * Everything reads, writes, the request handlers and live pushes share. It stands above the
 * model, db and pending-writes floors (it holds their objects) and under everything that takes
 * it; the db floor's helpers take the smaller `Store` instead. @internal
 */
export interface Core<TCtx = unknown> {
  db: TidesyncDb
  ipc: Ipc
  tables: TidesyncTables
  models: ReadonlyMap<string, ResolvedModel<TCtx>>
  hlc: HybridClock
  pending: PendingWrites
  logger: Logger
  limits: Limits
  keyPrefix: string
  now(): number
  /**
   * Hands committed changes of one model, in their wire form, to every server (IPC pub/sub);
   * never throws.
   */
  publish(model: string, changes: LiveChange[]): Promise<void>
}
