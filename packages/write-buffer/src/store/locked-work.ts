import type { Ipc } from '@tidesync/ipc'
import type { Logger } from '../types.js'
import type { KeyLayout } from './keys.js'

/**
 * What every piece of work that takes the buffer's IPC locks needs (flushes, checkpoints,
 * start-up recovery). @internal
 */
export interface LockedWorkContext {
  ipc: Ipc
  keys: KeyLayout
  logger: Logger
  now: () => number
  lockTtlSeconds: number
  lockWaitMs: number
}
