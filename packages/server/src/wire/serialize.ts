import type { RecordWithMeta, Tombstone, WireMeta, WireRecord } from '@tidesync/protocol'
import type { TidesyncTables } from '../schema/metadata.js'
import type { ResolvedModel } from '../schema/resolve-models.js'
import { toWireValue } from '../validation/values.js'

/** A metadata row as drizzle reads it. @internal */
export type MetaRow = TidesyncTables['meta']['$inferSelect']

/** A model row (drizzle property names) as a wire record. */
export function rowToWire(model: ResolvedModel<unknown>, row: Record<string, unknown>): WireRecord {
  const record: Record<string, unknown> = {}
  for (const key of model.columns.keys()) record[key] = toWireValue(row[key])
  return record as WireRecord
}

export function metaToWire(meta: MetaRow): WireMeta {
  return {
    created_at: meta.createdAt.toISOString(),
    updated_at: meta.updatedAt.toISOString(),
    deleted_at: meta.deletedAt ? meta.deletedAt.toISOString() : null,
    rev: meta.rev,
    clocks: meta.clocks ?? {},
  }
}

export function toTombstone(meta: MetaRow): Tombstone {
  return { uid: meta.uid, deleted_at: (meta.deletedAt ?? meta.updatedAt).toISOString(), rev: meta.rev }
}

/**
 * Metadata for a row written outside tidesync (no metadata row yet): revision 0, timestamps of
 * now. Reads show it; the next write or full reconcile stores a real one (the repair).
 */
export function syntheticMeta(model: ResolvedModel<unknown>, uid: string, now: Date): MetaRow {
  return {
    model: model.name,
    uid,
    createdAt: now,
    updatedAt: now,
    deletedAt: null,
    deletedClock: null,
    rev: 0,
    clocks: {},
  }
}

export function withMeta(
  model: ResolvedModel<unknown>,
  row: Record<string, unknown>,
  meta: MetaRow,
): RecordWithMeta {
  return { record: rowToWire(model, row), meta: metaToWire(meta) }
}
