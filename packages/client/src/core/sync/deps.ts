import type { ClientContext } from '../context.js'
import type { CrossTabLock } from '../db/lock.js'
import type { StatusStore } from '../status.js'
import type { SerialQueue } from './serial-queue.js'
import type { SubsetRegistry } from './subsets.js'
import type { Transport } from './transport.js'

/** What the sync steps (push, pull, full reconcile) work with. @internal */
export interface SyncDeps {
  readonly ctx: ClientContext
  readonly transport: Transport
  readonly queue: SerialQueue
  readonly lock: CrossTabLock
  readonly status: StatusStore
  readonly subsets: SubsetRegistry
  /** Records per pull page. */
  readonly pageSize: number
  /** Changes per push. */
  readonly pushBatchSize: number
}
