/**
 * The tidesync wire protocol (version 1): the only module the client imports from the server
 * package, and as types only. PROTOCOL.md describes the same thing for other languages.
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

/** A record's id: a UUIDv7 made by the client (or the server for server-side creates). */
export type Uid = string

/** An HLC string, see the module comment. */
export type Hlc = string

/** An ISO-8601 UTC timestamp with milliseconds. */
export type IsoDate = string

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** A record's columns as JSON (timestamps as ISO strings). Always includes `uid`. */
export type WireRecord = { uid: Uid } & { [column: string]: JsonValue }

/** The metadata the server keeps per record, also after the record is deleted (tombstone). */
export interface WireMeta {
  created_at: IsoDate
  updated_at: IsoDate
  deleted_at: IsoDate | null
  /** Server revision: a number that grows with every committed change of any record. */
  rev: number
  /** The HLC of the last write of each column (per-field last-write-wins). */
  clocks: Record<string, Hlc>
}

/** The metadata a client sends for a full reconcile (the seed's dictionary). */
export interface ClientMeta {
  created_at: IsoDate
  updated_at: IsoDate
  deleted_at: IsoDate | null
}

/**
 * A filter on a model's columns, ANDed together. A value means equality (`null` means IS NULL),
 * `{ in: [...] }` means membership, `{ gte, gt, lte, lt }` are ranges (every bound given is
 * kept). Unknown columns are refused.
 */
export type WhereValue =
  | JsonValue
  | { in: JsonValue[] }
  | { gte?: JsonValue; gt?: JsonValue; lte?: JsonValue; lt?: JsonValue }
export type Where = Record<string, WhereValue>

// Errors ---------------------------------------------------------------------------------------

export type ErrorCode =
  /** The payload's shape is wrong (missing field, wrong type, not an object). */
  | 'BAD_REQUEST'
  | 'UNKNOWN_MODEL'
  | 'UNKNOWN_METHOD'
  /** A column in `where`, data or a patch that the model does not have. */
  | 'UNKNOWN_COLUMN'
  /** A value of the wrong type for its column. */
  | 'INVALID_TYPE'
  | 'INVALID_DATE'
  /** `__proto__`, `constructor` or `prototype` used as a key. */
  | 'FORBIDDEN_KEY'
  /** A metadata dictionary, batch or message over the configured size. */
  | 'PAYLOAD_TOO_LARGE'
  /** No or bad credentials. */
  | 'UNAUTHORIZED'
  /** Outside the caller's scope, or refused by `canWrite`. */
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  /** The checkpoint is unknown or too old: run a full reconcile. */
  | 'CHECKPOINT_EXPIRED'
  /** A temporary failure (database or IPC unreachable): retry later. */
  | 'UNAVAILABLE'
  | 'INTERNAL'
  /**
   * The socket has more requests in flight than the server handles and queues per socket
   * (`retryable`): wait for answers before sending more. Counts as a violation (PROTOCOL.md
   * section 12).
   */
  | 'TOO_MANY_REQUESTS'
  /**
   * Only in `tidesync:error`: the socket sent too many invalid requests in a short time and is
   * being disconnected (see PROTOCOL.md section 12).
   */
  | 'TOO_MANY_VIOLATIONS'

export interface WireError {
  code: ErrorCode
  message: string
  /** True when the same request may succeed later unchanged. */
  retryable?: boolean
}

export type Reply<T> = { result: T; error?: undefined } | { error: WireError; result?: undefined }

// Requests -------------------------------------------------------------------------------------

/** `service`: the per-model services, also usable from an HTTP framework. */
export type ServiceRequest =
  | { model: string; method: 'findUnique'; args: { uid: Uid } }
  | { model: string; method: 'findMany'; args: { where?: Where; limit?: number } }
  | { model: string; method: 'create'; args: { uid?: Uid; data: Record<string, JsonValue>; clock?: Hlc } }
  | { model: string; method: 'update'; args: { uid: Uid; patch: Record<string, JsonValue>; clock?: Hlc } }
  | { model: string; method: 'delete'; args: { uid: Uid; clock?: Hlc } }

export interface RecordWithMeta {
  record: WireRecord
  meta: WireMeta
}

/** A tombstone: the record is gone for good (never resurrected). */
export interface Tombstone {
  uid: Uid
  deleted_at: IsoDate
  rev: number
}

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
}

export interface PullResult {
  /** Records created or changed since the checkpoint that match where+scope. */
  upserts: RecordWithMeta[]
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
  /** Refused for good (validation, scope, canWrite): drop it locally and show the error. */
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

// socket.io typings ----------------------------------------------------------------------------

type Ack<T> = (reply: Reply<T>) => void

export interface ClientToServerEvents {
  service: (request: ServiceRequest, ack: Ack<RecordWithMeta | RecordWithMeta[] | Tombstone | null>) => void
  'sync:full': (request: FullSyncRequest, ack: Ack<FullSyncResult>) => void
  'sync:pull': (request: PullRequest, ack: Ack<PullResult>) => void
  'sync:push': (request: PushRequest, ack: Ack<PushResult>) => void
  subscribe: (request: SubscribeRequest, ack: Ack<SubscribeResult>) => void
  unsubscribe: (request: UnsubscribeRequest, ack: Ack<{ ok: true }>) => void
}

export interface ServerToClientEvents {
  changes: (push: ChangesPush) => void
  /**
   * Sent just before the server disconnects the socket, saying why: `TOO_MANY_VIOLATIONS`
   * (repeated invalid requests). socket.io clients do not reconnect by themselves after a
   * server-side disconnect.
   */
  'tidesync:error': (error: WireError) => void
}
