import type { ClientContext } from '../context.js'
import type { CrossTabLock } from '../db/lock.js'
import type { TidesyncPushTimeoutError } from '../errors.js'
import type { StatusStore } from '../status.js'
import type { PushPacer } from './push-pacer.js'
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
  /** Sizes and times pushes (adapts the batch size to how fast the server answers). */
  readonly pacer: PushPacer
  /** Told when a push outlives its timeout (the push stays open; see `pushOutbox`). */
  readonly onPushTimeout?: (error: TidesyncPushTimeoutError) => void
  /** Told when the answer to such a push came and was applied. */
  readonly onLatePushAnswered?: () => void
}
