import type { Ipc } from '@tidesync/ipc'
import type { HybridClock } from '@tidesync/protocol'
import type { TidesyncTables } from './schema/metadata.js'
import type { ResolvedModel } from './schema/resolve-models.js'
import type { Logger, TidesyncDb } from './types.js'
import type { PendingWrites } from './write/pending-writes.js'
import type { CommittedChange } from './write/staged-change.js'

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

/** Everything the services, sync and live parts share. @internal */
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
  /** Hands committed changes to every server (IPC pub/sub); never throws. */
  publish(changes: CommittedChange[]): Promise<void>
}
