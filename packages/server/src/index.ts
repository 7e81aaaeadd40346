export { UnauthorizedError } from './auth/authenticate.js'
export { captureStatements } from './capture-statements.js'
export { ensureSchema, schemaStatements } from './db/ensure-schema.js'
export {
  TidesyncConfigError,
  TidesyncError,
  TidesyncForbiddenError,
  TidesyncValidationError,
} from './errors.js'
export type { ModelService } from './handlers/service.js'
export type { CaptureReaderOptions } from './live/capture-reader.js'
export { defaultLogger, noopLogger } from './logger.js'
export type { TidesyncOptions } from './options.js'
export type * from './protocol.js'
export { formatHlc, HybridClock, PROTOCOL_VERSION, parseHlc } from './protocol.js'
export type { TidesyncTables } from './schema/metadata.js'
export {
  defineTidesyncTables,
  tidesyncApplied,
  tidesyncChanges,
  tidesyncHandoffs,
  tidesyncMeta,
  tidesyncRevSeq,
  tidesyncState,
  tidesyncTables,
} from './schema/metadata.js'
export type { InstallOptions, TidesyncServer } from './sync-server.js'
export { installTidesync } from './sync-server.js'
export type { Tidesync } from './tidesync.js'
export { createTidesync } from './tidesync.js'
export type {
  AuthContext,
  Handshake,
  Logger,
  ModelConfig,
  TidesyncDb,
  WriteCheck,
  WriteOp,
} from './types.js'
