import type { ClientMeta } from '@tidesync/protocol'
import { parseHlc } from '@tidesync/protocol'
import { TidesyncValidationError } from '../errors.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import { canonicalDate, parseColumnValue, parseDate } from '../model/values.js'
import { expectObject, isRecord } from './shapes.js'

/** The model a request names (among the server's `models`), or UNKNOWN_MODEL. */
export function resolveModel<TCtx>(
  server: { models: ReadonlyMap<string, ResolvedModel<TCtx>> },
  name: unknown,
  path = 'model',
): ResolvedModel<TCtx> {
  if (typeof name !== 'string') throw new TidesyncValidationError('BAD_REQUEST', 'must be a model name', path)
  const model = server.models.get(name)
  if (!model)
    throw new TidesyncValidationError(
      'UNKNOWN_MODEL',
      `unknown model ${JSON.stringify(name.slice(0, 64))}`,
      path,
    )
  return model
}

/** A uid valid for the model's `uid` column (a UUID for uuid columns). */
export function parseUid(model: ResolvedModel<unknown>, value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
    throw new TidesyncValidationError(
      'INVALID_TYPE',
      'a uid must be a non-empty string of at most 255 characters',
      path,
    )
  }
  return parseColumnValue(model.uid, value, path) as string
}

/** A client HLC (the format of @tidesync/protocol's `parseHlc`). */
export function parseClock(value: unknown, path: string): string {
  if (typeof value !== 'string' || !parseHlc(value)) {
    throw new TidesyncValidationError(
      'INVALID_TYPE',
      'must be an HLC like 2026-11-23T13:45:12.345Z-0001-node',
      path,
    )
  }
  return value
}

function isWritable(model: ResolvedModel<unknown>, key: string): boolean {
  const column = model.columns.get(key)!
  return !column.generated && !column.generatedIdentity
}

/**
 * Checks a create's data or an update's patch and converts its values for drizzle. A create must
 * carry every NOT NULL column without a default; counters change only through `increment`.
 */
export function parseFields(
  model: ResolvedModel<unknown>,
  value: unknown,
  path: string,
  mode: 'create' | 'update',
  uid: string,
): Record<string, unknown> {
  const input = expectObject(value, path)
  const fields: Record<string, unknown> = {}
  for (const [key, raw] of Object.entries(input)) {
    const at = `${path}.${key}`
    if (raw === undefined) continue
    const column = model.columns.get(key)
    if (!column)
      throw new TidesyncValidationError('UNKNOWN_COLUMN', `model ${model.name} has no column ${key}`, at)
    if (!isWritable(model, key))
      throw new TidesyncValidationError('BAD_REQUEST', 'a generated column cannot be written', at)
    if (key === 'uid') {
      if (parseUid(model, raw, at) !== uid)
        throw new TidesyncValidationError('BAD_REQUEST', 'the uid cannot change', at)
      continue
    }
    if (mode === 'update' && model.counters.has(key)) {
      throw new TidesyncValidationError('BAD_REQUEST', `${key} is a counter: change it with an increment`, at)
    }
    if (raw === null) {
      if (column.notNull) throw new TidesyncValidationError('INVALID_TYPE', 'cannot be null', at)
      fields[key] = null
      continue
    }
    fields[key] = parseColumnValue(column, raw, at)
  }
  if (mode === 'create') {
    for (const [key, column] of model.columns) {
      if (key === 'uid' || key in fields) continue
      if (column.notNull && !column.hasDefault && isWritable(model, key)) {
        throw new TidesyncValidationError('INVALID_TYPE', 'is required', `${path}.${key}`)
      }
    }
  } else if (Object.keys(fields).length === 0) {
    throw new TidesyncValidationError('BAD_REQUEST', 'an update needs at least one column', path)
  }
  return fields
}

/** Counter deltas: counter columns only, safe integers. */
export function parseDeltas(
  model: ResolvedModel<unknown>,
  value: unknown,
  path: string,
): Record<string, number> {
  const input = expectObject(value, path)
  const deltas: Record<string, number> = {}
  for (const [key, raw] of Object.entries(input)) {
    const at = `${path}.${key}`
    if (!model.columns.has(key))
      throw new TidesyncValidationError('UNKNOWN_COLUMN', `model ${model.name} has no column ${key}`, at)
    if (!model.counters.has(key))
      throw new TidesyncValidationError('BAD_REQUEST', `${key} is not a counter`, at)
    if (typeof raw !== 'number' || !Number.isSafeInteger(raw)) {
      throw new TidesyncValidationError('INVALID_TYPE', 'a delta must be a safe integer', at)
    }
    deltas[key] = raw
  }
  if (Object.keys(deltas).length === 0)
    throw new TidesyncValidationError('BAD_REQUEST', 'an increment needs a delta', path)
  return deltas
}

const UUID_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** One metadata entry when everything in it is canonical, else undefined (take the slow path). */
function fastEntry(key: string, entry: unknown): ParsedClientMeta | undefined {
  if (!UUID_KEY.test(key) || !isRecord(entry)) return undefined
  const createdAt = canonicalDate(entry.created_at)
  if (!createdAt) return undefined
  const updatedAt = entry.updated_at == null ? createdAt : canonicalDate(entry.updated_at)
  const deletedAt = entry.deleted_at == null ? null : canonicalDate(entry.deleted_at)
  if (!updatedAt || deletedAt === undefined) return undefined
  return { createdAt, updatedAt, deletedAt }
}

/** A parsed full-reconcile metadata entry. @internal */
export interface ParsedClientMeta {
  createdAt: Date
  updatedAt: Date
  deletedAt: Date | null
}

/** The full reconcile's `{ uid -> { created_at, updated_at, deleted_at } }`, bounded in size. */
export function parseMetadataDict(
  model: ResolvedModel<unknown>,
  value: unknown,
  maxEntries: number,
  path = 'metadata',
): Map<string, ParsedClientMeta> {
  if (value === undefined || value === null) return new Map()
  const input = expectObject(value, path)
  const keys = Object.keys(input)
  if (keys.length > maxEntries) {
    throw new TidesyncValidationError(
      'PAYLOAD_TOO_LARGE',
      `${keys.length} entries, at most ${maxEntries}: sync a narrower where`,
      path,
    )
  }
  const parsed = new Map<string, ParsedClientMeta>()
  const canonicalUids = model.uid.columnType === 'PgUUID'
  for (const key of keys) {
    // Fast path for what clients send (canonical uids and ISO dates); anything else takes the
    // checks below, which say exactly what is wrong and where.
    const fast = canonicalUids ? fastEntry(key, input[key]) : undefined
    if (fast) {
      parsed.set(key.toLowerCase(), fast)
      continue
    }
    const at = `${path}.${key}`
    const uid = parseUid(model, key, at)
    const entry = input[key]
    if (!isRecord(entry)) throw new TidesyncValidationError('BAD_REQUEST', 'must be an object', at)
    const meta = entry as Partial<Record<keyof ClientMeta, unknown>>
    const createdAt = parseDate(meta.created_at, `${at}.created_at`)
    const updatedAt = meta.updated_at == null ? createdAt : parseDate(meta.updated_at, `${at}.updated_at`)
    const deletedAt = meta.deleted_at == null ? null : parseDate(meta.deleted_at, `${at}.deleted_at`)
    parsed.set(uid, { createdAt, updatedAt, deletedAt })
  }
  return parsed
}
