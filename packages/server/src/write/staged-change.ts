import type { WireRecord } from '@tidesync/protocol'
import type { ResolvedModel } from '../schema/resolve-models.js'
import type { WriteOp } from '../types.js'
import type { MetaRow } from '../wire/serialize.js'

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
  /** The row before, as `to_jsonb` gave it (database column names), for the change log. */
  beforeJson: unknown
  before: WireRecord | null
  /** The record after the change; null when it is deleted. */
  after: WireRecord | null
  /**
   * The row after the change as the database returned it (drizzle property names), when it was
   * written (a batch carries it to the record's next change instead of reading the row again).
   */
  afterRow?: Record<string, unknown> | null
  /** The metadata to store (its `rev` is replaced when the change is written). */
  meta: MetaRow
  /** Counter deltas to hand to the write buffer once the transaction committed. */
  deferredDeltas?: Record<string, number>
  /** Merged fields of a `buffered` model to hand to the write buffer once the transaction committed. */
  deferredFields?: Record<string, unknown>
}

/** A committed change, as published to every server. @internal */
export interface CommittedChange {
  model: string
  uid: string
  op: 'upsert' | 'delete'
  status: 'written' | 'unchanged'
  before: WireRecord | null
  after: WireRecord | null
  meta: MetaRow
}
