import { WriteBufferError } from '../errors.js'
import type { WriteBufferOptions } from '../types.js'

/** The timing and size options, checked, with their defaults. */
export type Settings = Required<
  Pick<
    WriteBufferOptions,
    | 'flushInterval'
    | 'checkpointInterval'
    | 'maxQueueSize'
    | 'lockWaitMs'
    | 'lockTtlSeconds'
    | 'getCacheTtl'
    | 'readWaitMs'
    | 'orphanRetries'
    | 'ledgerRetentionMs'
    | 'maxBackoffMs'
    | 'insertMethod'
  >
>

/** The durability in effect: 'none' on Redis (the store is durable) or without a checkpoint path. */
export type EffectiveDurability = 'checkpoint' | 'journal' | 'none'

export interface DurabilitySettings {
  durability: EffectiveDurability
  checkpointPath: string | false
  journalFsync: 'always' | number
}

/** Checks the options every buffer needs; throws WB_INVALID_OPTION. */
export function checkRequired(options: WriteBufferOptions): void {
  if (!options?.ipc) throw new WriteBufferError('WB_INVALID_OPTION', 'createWriteBuffer() needs { ipc }.')
  if (!options.databases?.default) {
    throw new WriteBufferError(
      'WB_INVALID_OPTION',
      'createWriteBuffer() needs { databases: { default: db } }.',
    )
  }
}

export function resolveSettings(options: WriteBufferOptions): Settings {
  return {
    flushInterval: positive(options.flushInterval, 5000, 'flushInterval'),
    checkpointInterval: positive(options.checkpointInterval, 30_000, 'checkpointInterval'),
    maxQueueSize: positive(options.maxQueueSize, 10_000, 'maxQueueSize'),
    lockWaitMs: positive(options.lockWaitMs, 60_000, 'lockWaitMs'),
    lockTtlSeconds: positive(options.lockTtlSeconds, 30, 'lockTtlSeconds'),
    getCacheTtl: options.getCacheTtl ?? 5000,
    readWaitMs: positive(options.readWaitMs, 30_000, 'readWaitMs'),
    orphanRetries: options.orphanRetries ?? 5,
    ledgerRetentionMs: positive(options.ledgerRetentionMs, 7 * 24 * 3600 * 1000, 'ledgerRetentionMs'),
    maxBackoffMs: positive(options.maxBackoffMs, 60_000, 'maxBackoffMs'),
    insertMethod: insertMethod(options.insertMethod),
  }
}

export function resolveDurability(options: WriteBufferOptions): DurabilitySettings {
  const checkpointPath = options.checkpointPath ?? '.tidesync/write-buffer'
  const durability = options.durability ?? 'checkpoint'
  if (durability !== 'checkpoint' && durability !== 'journal') {
    throw new WriteBufferError('WB_INVALID_OPTION', `durability must be 'checkpoint' or 'journal'.`)
  }
  return {
    durability: options.ipc.driver === 'redis' || checkpointPath === false ? 'none' : durability,
    checkpointPath,
    journalFsync:
      options.journalFsync === 'always' ? 'always' : positive(options.journalFsync, 1000, 'journalFsync'),
  }
}

function insertMethod(value: WriteBufferOptions['insertMethod']): 'copy' | 'insert' {
  if (value === undefined) return 'copy'
  if (value !== 'copy' && value !== 'insert')
    throw new WriteBufferError('WB_INVALID_OPTION', `insertMethod must be 'copy' or 'insert'.`)
  return value
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new WriteBufferError(
      'WB_INVALID_OPTION',
      `${name} must be a positive number of milliseconds/seconds.`,
    )
  }
  return value
}
