import type { LiveChange, RecordWithMeta, Tombstone, WireMeta, WireRecord } from '@tidesync/protocol'
import type { TidesyncTables } from '../schema/metadata.js'
import type { ResolvedModel } from './resolve-models.js'
import { toWireValue } from './values.js'

/**
 * The server's record, and its one wire form. Inside the server a record is a row (drizzle
 * property names and values) and a metadata row; it becomes wire JSON (ISO dates, 64-bit
 * integers as strings) only at the edge, through the functions below.
 */

/** A metadata row as drizzle reads it. @internal */
export type MetaRow = TidesyncTables['meta']['$inferSelect']

/** One version of a record: its row (null when deleted or absent) and its metadata. @internal */
export interface RecordVersion {
  row: Record<string, unknown> | null
  meta: MetaRow
}

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

/** The tombstone of a record whose wire metadata is `meta` (what `toTombstone` gives). */
export function tombstoneOf(uid: string, meta: WireMeta): Tombstone {
  return { uid, deleted_at: meta.deleted_at ?? meta.updated_at, rev: meta.rev }
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

/** The wire form of `syntheticMeta` (a row written outside tidesync, read at `now`). */
export function syntheticWireMeta(now: Date): WireMeta {
  const at = now.toISOString()
  return { created_at: at, updated_at: at, deleted_at: null, rev: 0, clocks: {} }
}

/** A row read with its wire metadata (synthetic, dated `now`, when it has none) as a wire record. */
export function withMeta(
  model: ResolvedModel<unknown>,
  row: Record<string, unknown>,
  meta: WireMeta | null,
  now: Date,
): RecordWithMeta {
  return { record: rowToWire(model, row), meta: meta ?? syntheticWireMeta(now) }
}

/**
 * A committed change in its wire form, made once after the commit: the push's acknowledgement,
 * the service's answer and the live push to every server all read this one object.
 */
export function wireChange(
  model: ResolvedModel<unknown>,
  uid: string,
  op: LiveChange['op'],
  before: Record<string, unknown> | null,
  after: RecordVersion,
): LiveChange {
  return {
    uid,
    op,
    before: before ? rowToWire(model, before) : null,
    after: after.row ? rowToWire(model, after.row) : null,
    meta: metaToWire(after.meta),
  }
}
