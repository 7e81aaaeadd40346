import type { PullFormat } from '@tidesync/protocol'
import type { ClientContext } from '../context.js'
import type { SerialQueue } from '../db/serial-queue.js'
import type { StatusStore } from '../status.js'
import type { OwnRevisions } from './echoes.js'
import type { SubsetRegistry } from './subsets.js'
import type { Transport } from './transport.js'

/** What the sync steps (push batches, pulls, full reconciles, live changes) work with. @internal */
export interface SyncDeps {
  readonly ctx: ClientContext
  readonly transport: Transport
  /** Every server answer, pushed batch and live change is applied through it, in order. */
  readonly queue: SerialQueue
  readonly status: StatusStore
  readonly subsets: SubsetRegistry
  /** Records per pull page. */
  readonly pageSize: number
  /** Records in the first page of each pull (at most `pageSize`): what a first screen waits for. */
  readonly firstPageSize: number
  /** The revisions the answers to own pushes stored: their live echoes are dropped. */
  readonly ownRevisions: OwnRevisions
  /**
   * How pull pages are asked for: `'columns'` until a server refuses the option (one that
   * predates it), then `'records'` for the client's lifetime.
   */
  readonly wire: { pullFormat: PullFormat }
}
