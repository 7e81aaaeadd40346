/**
 * `@tidesync/ipc/redis`: the Redis driver. The only module that imports `ioredis`; load it
 * through `createIpc({ driver: 'redis' })` or import it directly.
 */

export type { RedisIpcCreateOptions } from './redis-ipc.js'
export { RedisIpc } from './redis-ipc.js'
