/**
 * The values the protocol carries: ids, clocks, dates, JSON, records and their metadata.
 * PROTOCOL.md sections 3 to 5 describe them for other languages.
 */

/** A record's id: a UUIDv7 made by the client (or the server for server-side creates). */
export type Uid = string

/** A hybrid logical clock string (see `hlc/format.ts` and PROTOCOL.md section 4). */
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
