import { ClusterIpc } from './drivers/cluster/cluster-ipc.js'
import { MemoryIpc } from './drivers/memory/memory-ipc.js'
import { IpcError } from './errors.js'
import type { Ipc, IpcOptions } from './types.js'

export { ClusterIpc } from './drivers/cluster/cluster-ipc.js'
export { MemoryIpc } from './drivers/memory/memory-ipc.js'
export type { IpcErrorCode } from './errors.js'
export { IpcError, IpcUnavailableError } from './errors.js'
export type {
  ClusterIpcOptions,
  Ipc,
  IpcEntry,
  IpcKeyType,
  IpcOptions,
  Json,
  Logger,
  MemoryIpcOptions,
  MessageHandler,
  RedisIpcOptions,
  Unsubscribe,
  WithLockOptions,
} from './types.js'

/**
 * Creates an IPC instance on the chosen driver.
 *
 * `redis` is loaded on demand from `@tidesync/ipc/redis`, so `ioredis` is only imported by
 * apps that use it.
 *
 * @example
 * const ipc = await createIpc({ driver: 'memory' })
 * await ipc.incrBy('views:42', 1)
 * await ipc.close()
 */
export async function createIpc(options: IpcOptions = { driver: 'memory' }): Promise<Ipc> {
  switch (options?.driver) {
    case 'memory':
      return new MemoryIpc(options)
    case 'cluster':
      return ClusterIpc.create(options)
    case 'redis': {
      const { RedisIpc } = await import('./drivers/redis/index.js')
      return RedisIpc.create(options)
    }
    default:
      throw new IpcError(
        'IPC_INVALID_ARGUMENT',
        `Unknown IPC driver ${JSON.stringify((options as { driver?: unknown })?.driver)}: use 'memory', 'cluster' or 'redis'.`,
      )
  }
}
