import type { RecordWithMeta, WireMeta } from '@tidesync/protocol'
import { emptyMeta, type MetaRow } from './db/rows.js'
import { fromWire } from './schema/codec.js'
import type { ModelInfo } from './schema/model.js'

type Row = Record<string, unknown>

/** What applying one server state does to the local rows. `undefined`: leave it alone. */
export interface MergeResult {
  /** The new record row, or `null` to delete it. */
  row?: Row | null
  /** The new meta row, or `null` to delete it. */
  meta?: MetaRow | null
}

/**
 * Merges a server state of a record into the local state; the rules of the whole client:
 * - A local tombstone is never undone: a deleted record does not come back.
 * - A state older than the one held (lower `rev`) is ignored.
 * - A field with an unconfirmed local write whose clock is newer than the server's clock for
 *   that field keeps the local value (the server will take it when the write is pushed).
 * - A counter shows the server's value plus the unconfirmed local increments.
 * `onlyKnown`: a record the client does not hold is not added (answers to pushes: the record
 * may have been evicted meanwhile).
 */
export function mergeServerState(
  model: ModelInfo,
  incoming: RecordWithMeta,
  row: Row | undefined,
  stored: MetaRow | undefined,
  onlyKnown: boolean,
): MergeResult {
  const serverMeta = incoming.meta
  const uid = incoming.record.uid
  if (stored?.deleted_at) {
    if (!serverMeta.deleted_at) return {}
    return {
      meta: { ...stored, deleted_at: serverMeta.deleted_at, rev: Math.max(stored.rev, serverMeta.rev) },
    }
  }
  if (stored && serverMeta.rev < stored.rev) return {}
  if (!stored && !row && onlyKnown) return {}
  const meta: MetaRow = stored ? { ...stored } : emptyMeta(uid)
  if (serverMeta.deleted_at) {
    return { row: null, meta: { ...tombstone(meta, serverMeta.deleted_at, serverMeta.rev) } }
  }
  const server = fromWire(model, incoming.record)
  const next: Row = { ...(row ?? {}) }
  const clocks = { ...meta.clocks }
  const base = { ...meta.base }
  for (const column of model.columns.values()) {
    const key = column.key
    if (!Object.hasOwn(server, key)) continue
    const value = server[key]
    const serverClock = serverMeta.clocks[key] ?? ''
    if (column.counter) {
      base[key] = Number(value ?? 0)
      next[key] = base[key] + (meta.deltas[key] ?? 0)
      if (serverClock) clocks[key] = serverClock
      continue
    }
    const pending = meta.pending[key]
    if (row && pending !== undefined && pending > serverClock) continue
    next[key] = value
    if (serverClock) clocks[key] = serverClock
    else delete clocks[key]
  }
  next.uid = uid
  meta.clocks = clocks
  meta.base = base
  meta.rev = serverMeta.rev
  meta.created_at = serverMeta.created_at
  const localNewer =
    Object.keys(meta.pending).length > 0 &&
    meta.updated_at !== null &&
    meta.updated_at > serverMeta.updated_at
  meta.updated_at = localNewer ? meta.updated_at : serverMeta.updated_at
  meta.deleted_at = null
  return { row: next, meta }
}

/**
 * The meta of a server state applied to a record the client held nothing of: what
 * `mergeServerState` gives for it (clocks of the columns the row has, counters' bases).
 */
export function freshMeta(model: ModelInfo, uid: string, serverMeta: WireMeta, row: Row): MetaRow {
  const meta = emptyMeta(uid)
  for (const column of model.columns.values()) {
    const key = column.key
    if (!Object.hasOwn(row, key)) continue
    const clock = serverMeta.clocks[key]
    if (clock) meta.clocks[key] = clock
    if (column.counter) meta.base[key] = Number(row[key] ?? 0)
  }
  meta.rev = serverMeta.rev
  meta.created_at = serverMeta.created_at
  meta.updated_at = serverMeta.updated_at
  return meta
}

/** The meta of a record deleted on the server (keeps a pending local delete's flag). */
export function tombstone(meta: MetaRow, deletedAt: string, rev: number): MetaRow {
  return {
    ...meta,
    deleted_at: deletedAt,
    rev: Math.max(meta.rev, rev),
    pending: {},
    deltas: {},
  }
}

/** Recomputes a record's counters after its unconfirmed increments changed. */
export function withCounters(model: ModelInfo, row: Row, meta: MetaRow): Row {
  if (model.counters.size === 0) return row
  const next = { ...row }
  for (const key of model.counters) {
    if (meta.base[key] === undefined) continue
    next[key] = meta.base[key] + (meta.deltas[key] ?? 0)
  }
  return next
}
