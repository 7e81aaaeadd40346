export { CAPTURE_SETTING, FLUSH_CAPTURE_MODE } from './db/capture-tag.js'
export { guardPgPool } from './db/guard-pg-pool.js'
export type { WriteBufferErrorCode } from './errors.js'
export { WriteBufferError } from './errors.js'
export {
  DEAD_LETTER_TABLE,
  ensureSchema,
  LEDGER_TABLE,
  RECEIPT_TABLE,
  WATERMARK_TABLE,
} from './flush/batch-ledger.js'
export type { ReadManyOptions } from './read/read-many.js'
export type { DeferredOptions, DeferredTarget, DeferredWrite, StagedWrites } from './tables/deferred.js'
export { DeferredWrites } from './tables/deferred.js'
export type { HandoffTable } from './tables/handoff-table.js'
export { defineHandoffTable, handoffSchemaObjects } from './tables/handoff-table.js'
export type {
  ColumnKey,
  KeyInput,
  NumericColumnKey,
  ReceiptedIncrement,
  RedeliveryReport,
  UpdateFields,
} from './tables/table-buffer.js'
export { RowHandle, TableBuffer } from './tables/table-buffer.js'
export type {
  AnyPgDatabase,
  CheckpointReport,
  Durability,
  FlushReport,
  Logger,
  TableRegistration,
  WriteBufferEvents,
  WriteBufferOptions,
} from './types.js'
export type { EffectiveDurability } from './write-buffer.js'
export { createWriteBuffer, openWriteBuffer, WriteBuffer } from './write-buffer.js'
