import type { WireMeta, WireRecord } from '@tidesync/protocol'
import type { TidesyncError } from '../errors.js'
import type { MetaRow, RecordVersion } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { WriteOp } from '../types.js'

/**
 * The shapes of the write path. One record shape runs through it: a row with drizzle values
 * (as the database returns it) and its metadata row, from the read under the record's lock
 * (`CurrentState`) to the version a change leaves (`StagedChange.after`), its revision and the
 * change log (write/revisions.ts). It becomes wire JSON once, after the commit (`wireChange`).
 */

/** A change to apply: values already validated and converted for drizzle. @internal */
export interface ChangeRequest {
  model: ResolvedModel<unknown>
  uid: string
  op: WriteOp
  /** create: the record's columns; update: the changed columns. */
  fields?: Record<string, unknown>
  /** increment: counter deltas. */
  deltas?: Record<string, number>
  /** The change's HLC, already received (clamped) by the server clock. */
  clock: string
}

/** A record as a write finds it, under its lock (pending write-buffer values overlaid). @internal */
export interface CurrentState {
  /** Null when the record has no row (never written, or deleted). */
  row: Record<string, unknown> | null
  /** The row as `to_jsonb` gives it (database column names): what the change log keeps. */
  json: unknown
  inScope: boolean
  /** Null when the row was written outside tidesync (no metadata yet). */
  meta: MetaRow | null
}

/**
 * A change written inside a transaction, before it gets its revision (revisions are assigned
 * last, under a per-model lock, so that they commit in order). @internal
 */
export interface StagedChange {
  model: ResolvedModel<unknown>
  uid: string
  /** `written`: rows or metadata changed; `unchanged`: nothing to store (lost to newer writes, already deleted...). */
  status: 'written' | 'unchanged'
  op: 'upsert' | 'delete'
  /** The record as the change found it. */
  before: CurrentState
  /** The record as the change leaves it; `meta.rev` is set when the change gets its revision. */
  after: RecordVersion
  /** Counter deltas to hand to the write buffer once the transaction committed. */
  deferredDeltas?: Record<string, number>
  /** Merged fields of a `buffered` model to hand to the write buffer once the transaction committed. */
  deferredFields?: Record<string, unknown>
}

/** One validated change of a batch (see `applyBatch`). @internal */
export interface BatchItem {
  /** The change's id: a pushing client's ids are recorded, so a retried push applies once. */
  id: string
  req: ChangeRequest
}

/**
 * What became of one change of a batch, in wire form: `applied` carries the record after it and
 * the metadata of the record's last write in the batch up to it (its own, or, when it changed
 * nothing, an earlier one), as the commit serialised them. @internal
 */
export type BatchOutcome =
  | { status: 'applied'; record: WireRecord | null; meta: WireMeta }
  | { status: 'duplicate' }
  | { status: 'rejected'; error: TidesyncError }
