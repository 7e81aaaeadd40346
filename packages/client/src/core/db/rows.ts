import type { Change, Hlc, JsonValue, Where } from '@tidesync/protocol'

/**
 * What the client keeps per record besides the record itself. Lives in `m_<model>`, keyed by uid.
 * A record deleted locally keeps its meta row (a tombstone) and loses its record row.
 */
export interface MetaRow {
  uid: string
  /** From the server (ISO), or the local write time for a record the server has not seen. */
  created_at: string | null
  updated_at: string | null
  /** Set when the record is deleted (locally or on the server): a tombstone. */
  deleted_at: string | null
  /** The server revision of the state last applied; -1 before the server confirmed anything. */
  rev: number
  /** The clock of the value held locally, per field. */
  clocks: Record<string, Hlc>
  /** Fields with unconfirmed local writes and the newest such write's clock. */
  pending: Record<string, Hlc>
  /** The server's value of each counter column (the local value adds `deltas`). */
  base: Record<string, number>
  /** Increments not yet confirmed by the server, per counter column. */
  deltas: Record<string, number>
  /** A local delete the server has not confirmed yet. */
  pendingDelete: boolean
}

/**
 * The server metadata of records a pull wrote in bulk, one row per chunk in `p_<model>`: what
 * their `m_` rows would hold, without a row per record (one put per record instead of two).
 * A record's metadata is its `m_` row when it has one, else its entry in a page, and a page
 * entry counts only while the record's row exists (see `db/meta-pages.ts`). Every array has one
 * element per record, in the order of `uids` (sorted).
 */
export interface MetaPageRow {
  /** `[first uid, last uid, page id]` (a UUIDv7: a later page wins over an earlier one). */
  key: [string, string, string]
  uids: string[]
  created: string[]
  updated: string[]
  revs: number[]
  /** Per record, the index of its clocks in `clockSets` (records written together share them). */
  clocks: number[]
  clockSets: Array<Record<string, Hlc>>
  /** Per counter column, the server's value per record. */
  base: Record<string, number[]>
}

/**
 * A change as the outbox keeps it: the wire `Change` without its `model`, which the row names
 * (the wire name is added when it is sent: `wireChange`). Rows stored by earlier versions
 * still carry the wire name in `change.model`.
 */
export type StoredChange = WithoutModel<Change>

/** Each member of a union without `model`. */
type WithoutModel<C> = C extends unknown ? Omit<C, 'model'> : never

/** One local change waiting for the server, in `_outbox` (auto-increment `seq` keeps the order). */
export interface OutboxRow {
  seq?: number
  /** The change id (UUIDv7), unique per client: the server dedupes retried pushes by it. */
  id: string
  /** The model's schema key (its identity in every local table). */
  model: string
  uid: string
  change: StoredChange
  /** Local time it was queued (ms). */
  queuedAt: number
}

/** The checkpoint of one synced subset, in `_checkpoints`. */
export interface CheckpointRow {
  /** `<model key>|<canonical where>` */
  key: string
  model: string
  where: Where
  checkpoint: string
  updatedAt: number
}

/** Small client-wide values (client id, last HLC), in `_state`. */
export interface StateRow {
  key: string
  value: JsonValue
}

/** A cross-tab lease, in `_locks` (used when the Web Locks API is missing). */
export interface LockRow {
  name: string
  holder: string
  expiresAt: number
}

export function emptyMeta(uid: string): MetaRow {
  return {
    uid,
    created_at: null,
    updated_at: null,
    deleted_at: null,
    rev: -1,
    clocks: {},
    pending: {},
    base: {},
    deltas: {},
    pendingDelete: false,
  }
}

/** Whether the record has local writes the server has not confirmed. */
export function hasPending(meta: MetaRow): boolean {
  return meta.pendingDelete || Object.keys(meta.pending).length > 0 || Object.keys(meta.deltas).length > 0
}
