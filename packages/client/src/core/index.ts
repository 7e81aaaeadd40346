export type { ClientOptions, Collections } from './client.js'
export { createClient, TidesyncClient } from './client.js'
export { Collection } from './collection.js'
export type { LeaseOptions } from './db/lock.js'
export { defaultLogger } from './env.js'
export type { ClientErrorCode, TidesyncErrorCode } from './errors.js'
export {
  TidesyncClientError,
  TidesyncPushTimeoutError,
  TidesyncServerError,
  TidesyncValidationError,
} from './errors.js'
export type { FindOptions } from './live/query.js'
export type { BackoffOptions } from './sync/backoff.js'
export type { SubsetState } from './sync/subsets.js'
export type { TidesyncSocket } from './sync/transport.js'
export type {
  Clock,
  CreateInput,
  Logger,
  ModelName,
  ModelOptions,
  NumericKeys,
  RecordOf,
  Schema,
  SyncProgress,
  SyncStatus,
  Timers,
  UpdatePatch,
  WhereCondition,
  WhereOf,
} from './types.js'
