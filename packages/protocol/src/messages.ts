import type { WireError } from './errors.js'
import type {
  ClientMeta,
  Hlc,
  IsoDate,
  JsonValue,
  RecordWithMeta,
  Tombstone,
  Uid,
  WireMeta,
  WireRecord,
} from './records.js'
import type { Where } from './where/types.js'

/**
 * The tidesync wire protocol (version 1): what each request carries and what it answers.
 * PROTOCOL.md describes the same thing for other languages.
 *
 * Transport: socket.io. Every client request is an event with an acknowledgement callback; the
 * acknowledgement is always a `Reply<T>`: `{ result }` or `{ error: { code, message } }`.
 * Server pushes are plain events.
 *
 * Values: JSON. Timestamp columns travel as ISO-8601 strings (UTC, milliseconds); the receiver
 * turns them back into dates using the model's schema.
 *
 * Clocks: every write carries a hybrid logical clock (HLC) string
 *   `<ISO-8601 UTC with ms, 24 chars>-<counter, 4 lowercase hex>-<node id>`
 *   e.g. `2026-11-23T13:45:12.345Z-0001-c7f3a9`
 * HLCs compare as plain strings. The server clamps an HLC whose wall time is ahead of its own
 * clock by more than `maxClockSkewMs` to its own clock, and every reply carries the server's
 * HLC (`serverClock`) so clients move their clocks past it: causality survives clock skew.
 */

export const PROTOCOL_VERSION = 1

export type Reply<T> = { result: T; error?: undefined } | { error: WireError; result?: undefined }

// Requests -------------------------------------------------------------------------------------

/** `service`: the per-model services, also usable from an HTTP framework. */
export type ServiceRequest =
  | { model: string; method: 'findUnique'; args: { uid: Uid } }
  | { model: string; method: 'findMany'; args: { where?: Where; limit?: number } }
  | { model: string; method: 'create'; args: { uid?: Uid; data: Record<string, JsonValue>; clock?: Hlc } }
  | { model: string; method: 'update'; args: { uid: Uid; patch: Record<string, JsonValue>; clock?: Hlc } }
  | { model: string; method: 'delete'; args: { uid: Uid; clock?: Hlc } }

/** `sync:full`: the seed's reconcile. */
export interface FullSyncRequest {
  model: string
  where?: Where
  /** Everything the client holds for this model+where, including its local tombstones. */
  metadata: Record<Uid, ClientMeta>
}

export interface FullSyncResult {
  /** Records the client lacks. */
  addClient: RecordWithMeta[]
  /** Records the server has newer. */
  updateClient: RecordWithMeta[]
  /** Records deleted on the server (or by the client's own tombstone, now confirmed). */
  deleteClient: Tombstone[]
  /** Records the client holds that no longer match `where`/scope: drop locally, not deleted. */
  evictClient: Uid[]
  /** Records only the client has: push them (sync:push, op 'create'). */
  addDatabase: Uid[]
  /** Records the client has newer: push them (sync:push, op 'update' with the changed fields). */
  updateDatabase: Uid[]
  /** The checkpoint to use for the next delta pull of this model+where. */
  checkpoint: string
  serverClock: Hlc
}

/** `sync:pull`: what changed since a checkpoint, one page at a time. */
export interface PullRequest {
  model: string
  where?: Where
  /** From the last pull or full sync; `null` is refused (use sync:full first). */
  checkpoint: string
  /** Page size. @default 1000 (the server caps it) */
  limit?: number
  /**
   * How the page's upserts are sent: `'records'` in `upserts` (one object per record), or
   * `'columns'` in `columns` (`ColumnarRecords`: a third of the bytes, and no per-record work to
   * share clocks). A server that predates the option refuses it (`BAD_REQUEST`): pull again
   * without it. @default 'records'
   */
  format?: PullFormat
}

/** The encodings of a pull page's upserts (`PullRequest.format`). */
export type PullFormat = 'records' | 'columns'

/**
 * Records with their metadata in columns (`sync:pull` with `format: 'columns'`, PROTOCOL.md
 * section 9): the same content as `RecordWithMeta[]`, `rows[i]` and `meta[i]` being record i.
 */
export interface ColumnarRecords {
  /** Record keys, in the order of each row's values. */
  columns: string[]
  /** One array of wire values per record, in `columns` order. */
  rows: JsonValue[][]
  /** Per record: `[created_at, updated_at, deleted_at, rev, index into clocks]`. */
  meta: Array<[IsoDate, IsoDate, IsoDate | null, number, number]>
  /** The distinct per-column clock maps of the page (records written together share one). */
  clocks: Array<Record<string, Hlc>>
}

export interface PullResult {
  /** Records created or changed since the checkpoint that match where+scope (empty with `format: 'columns'`). */
  upserts: RecordWithMeta[]
  /** The upserts, when the request asked for `format: 'columns'`. */
  columns?: ColumnarRecords
  /** Records deleted since the checkpoint. */
  deletes: Tombstone[]
  /** Records changed since the checkpoint that no longer match where+scope. */
  evictions: Uid[]
  /** Pass this to the next pull. */
  checkpoint: string
  /** More pages follow: pull again with the new checkpoint at once. */
  hasMore: boolean
  /** Total changes still to pull including this page, for progress (may be approximate). */
  remaining: number
  serverClock: Hlc
}

/**
 * One local change from a client's outbox. `id` is unique per client (e.g. a UUIDv7); the
 * server remembers applied ids per client, so a push retried after a lost acknowledgement
 * applies once.
 */
export type Change =
  | { id: string; model: string; uid: Uid; op: 'create'; data: Record<string, JsonValue>; clock: Hlc }
  | { id: string; model: string; uid: Uid; op: 'update'; patch: Record<string, JsonValue>; clock: Hlc }
  | { id: string; model: string; uid: Uid; op: 'delete'; clock: Hlc }
  /** Adds deltas to counter columns (merged by addition, never last-write-wins). */
  | { id: string; model: string; uid: Uid; op: 'increment'; deltas: Record<string, number>; clock: Hlc }

export interface PushRequest {
  /** A stable id of the client's local database (all tabs of one app share it). */
  clientId: string
  changes: Change[]
}

export type ChangeOutcome =
  /** Applied now (some fields may have lost to newer writes: see `meta.clocks`). */
  | { id: string; status: 'applied'; meta: WireMeta; record: WireRecord | null }
  /** Applied by an earlier push with the same id: nothing done again. */
  | { id: string; status: 'duplicate' }
  /**
   * Refused for good (validation, scope, canWrite: a code whose `rejectsChange` is true): drop
   * it locally and show the error.
   */
  | { id: string; status: 'rejected'; error: WireError }

export interface PushResult {
  outcomes: ChangeOutcome[]
  serverClock: Hlc
}

/** `subscribe`: live pushes of a model+where (scoped by the server). */
export interface SubscribeRequest {
  model: string
  where?: Where
}

export interface SubscribeResult {
  subscriptionId: string
}

export interface UnsubscribeRequest {
  subscriptionId: string
}

// Server pushes --------------------------------------------------------------------------------

/** `changes`: committed changes that match one of the socket's subscriptions. */
export interface ChangesPush {
  subscriptionId: string
  model: string
  upserts: RecordWithMeta[]
  deletes: Tombstone[]
  evictions: Uid[]
  serverClock: Hlc
}
