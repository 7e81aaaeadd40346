import type { Ipc, Json } from '@tidesync/ipc'
import { decodeInsertItem, type InsertRun, isTextRun } from '../store/insert-items.js'
import type { KeyLayout, PendingKind } from '../store/keys.js'
import { type EncodedKey, parseRowField, rowId } from '../store/table-meta.js'

/** The pending changes of one row, merged over batches in order. */
export interface RowChange {
  key: EncodedKey
  /** Column -> value (last write wins). */
  set: Map<string, Json>
  /** Column -> summed delta, added after `set` (exact, as bigint). */
  add: Map<string, bigint>
  /** How many flushes this row already went unmatched (orphan batches). */
  attempts: number
  /**
   * Receipt -> increment given with `{ receipt }`: added with `add` by a flush only if the
   * receipt is not in the receipt ledger yet (applied at most once, however often it was given).
   */
  receipted: Map<string, { column: string; delta: bigint }>
}

/** Everything one flush writes: inserts first (in order), then one change per row. */
export interface Plan {
  /** Queued rows, in order: runs of JSON rows or of COPY text (see `store/insert-items.ts`). */
  inserts: InsertRun[]
  rows: Map<string, RowChange>
  /** Journal instance -> highest journal sequence number in this plan. */
  watermarks: Map<string, number>
  /**
   * Every receipt met (also those an update replaced): the flush records them all in the
   * receipt ledger, so a receipt given again later is never applied.
   */
  receipts: Set<string>
}

/** The stored content of one batch (in flight) or of the pending keys. */
export type BatchContent = Partial<Record<PendingKind, Record<string, Json> | Json[]>>

/** A journal-mode operation (in an `ops` list and in the LMDB journal, inside a group). */
export type OpRecord =
  | [instance: string, seq: number, type: 'i', key: EncodedKey, column: string, delta: number]
  | [
      instance: string,
      seq: number,
      type: 'r',
      key: EncodedKey,
      column: string,
      delta: number,
      receipt: string,
    ]
  | [instance: string, seq: number, type: 'u', key: EncodedKey, fields: Record<string, Json>]
  | [instance: string, seq: number, type: 'n', row: Record<string, Json>]

/**
 * The operations of one `ops` list item: the JSON text of a group of operations (what one
 * journal group commit wrote: encoded once, for LMDB and the IPC store alike, instead of once per
 * operation and per store), or a single operation.
 */
export function opsOf(item: Json): OpRecord[] {
  if (typeof item === 'string') return JSON.parse(item) as OpRecord[]
  return [item as unknown as OpRecord]
}

export function emptyPlan(): Plan {
  return { inserts: [], rows: new Map(), watermarks: new Map(), receipts: new Set() }
}

function rowOf(plan: Plan, key: EncodedKey): RowChange {
  const id = rowId(key)
  let row = plan.rows.get(id)
  if (!row) {
    row = { key, set: new Map(), add: new Map(), attempts: 0, receipted: new Map() }
    plan.rows.set(id, row)
  }
  return row
}

function setColumn(row: RowChange, column: string, value: Json): void {
  row.set.set(column, value)
  // An update after increments of the same column replaces them (last write wins).
  row.add.delete(column)
  for (const [receipt, increment] of row.receipted)
    if (increment.column === column) row.receipted.delete(receipt)
}

function addColumn(row: RowChange, column: string, delta: bigint): void {
  row.add.set(column, (row.add.get(column) ?? 0n) + delta)
}

/** A receipted increment: the first one of a receipt counts, repeats of it are ignored. */
function addReceipted(plan: Plan, key: EncodedKey, column: string, delta: bigint, receipt: string): void {
  if (plan.receipts.has(receipt)) return
  plan.receipts.add(receipt)
  rowOf(plan, key).receipted.set(receipt, { column, delta })
}

/** The hash field of a receipted increment: `[receipt, column, ...key]` as JSON. */
export function receiptField(key: EncodedKey, column: string, receipt: string): string {
  return JSON.stringify([receipt, column, ...key])
}

export function parseReceiptField(
  field: string,
): { receipt: string; column: string; key: EncodedKey } | null {
  try {
    const parsed = JSON.parse(field) as unknown
    if (!Array.isArray(parsed) || parsed.length < 3) return null
    const [receipt, column, ...key] = parsed
    if (typeof receipt !== 'string' || typeof column !== 'string') return null
    return { receipt, column, key: key as EncodedKey }
  } catch {
    return null
  }
}

/**
 * What is pending for one row and column beyond its `set` value: the summed plain increments
 * and every receipted one (reads count them all; a flush drops receipts already applied).
 */
export function pendingDelta(row: RowChange | undefined, column: string): bigint {
  if (!row) return 0n
  let delta = row.add.get(column) ?? 0n
  for (const increment of row.receipted.values()) if (increment.column === column) delta += increment.delta
  return delta
}

/**
 * Merges one batch into the plan. Batches must be merged oldest first. Within an aggregated
 * batch (hashes) the update of a column comes first, then its increments (plain and receipted)
 * are added: `update()` deletes the column's pending increments when it sets it, so those left
 * came after it.
 * Journal `ops` keep the exact order.
 */
export function mergeBatch(plan: Plan, content: BatchContent): void {
  for (const item of (content.ins as Json[] | undefined) ?? []) {
    // An item holds the rows one turn queued (see GroupCommit and store/insert-items.ts).
    for (const run of decodeInsertItem(item)) plan.inserts.push(run)
  }
  for (const [field, value] of Object.entries((content.upd as Record<string, Json> | undefined) ?? {})) {
    const parsed = parseRowField(field)
    if (parsed) setColumn(rowOf(plan, parsed.key), parsed.column, value)
  }
  for (const [field, value] of Object.entries((content.inc as Record<string, Json> | undefined) ?? {})) {
    const parsed = parseRowField(field)
    if (parsed && value !== null) addColumn(rowOf(plan, parsed.key), parsed.column, BigInt(String(value)))
  }
  for (const [field, value] of Object.entries((content.rct as Record<string, Json> | undefined) ?? {})) {
    const parsed = parseReceiptField(field)
    if (parsed && value !== null)
      addReceipted(plan, parsed.key, parsed.column, BigInt(String(value)), parsed.receipt)
  }
  for (const [id, attempts] of Object.entries((content.att as Record<string, Json> | undefined) ?? {})) {
    const row = plan.rows.get(id)
    if (row) row.attempts = Math.max(row.attempts, Number(attempts))
  }
  for (const item of (content.ops as Json[] | undefined) ?? [])
    for (const op of opsOf(item)) mergeOp(plan, op)
}

export function mergeOp(plan: Plan, op: OpRecord): void {
  const [instance, seq] = op
  plan.watermarks.set(instance, Math.max(plan.watermarks.get(instance) ?? 0, seq))
  switch (op[2]) {
    case 'i':
      addColumn(rowOf(plan, op[3]), op[4], BigInt(op[5]))
      break
    case 'r':
      addReceipted(plan, op[3], op[4], BigInt(op[5]), op[6])
      break
    case 'u': {
      const row = rowOf(plan, op[3])
      for (const [column, value] of Object.entries(op[4])) setColumn(row, column, value)
      break
    }
    case 'n': {
      const last = plan.inserts[plan.inserts.length - 1]
      if (last && !isTextRun(last)) last.rows.push(op[3])
      else plan.inserts.push({ rows: [op[3]] })
      break
    }
  }
}

/** The batch ids in flight for a table, oldest first. */
export async function listBatches(
  ipc: Ipc,
  keys: KeyLayout,
  table: string,
): Promise<Map<string, PendingKind[]>> {
  const batches = new Map<string, PendingKind[]>()
  for (const key of await ipc.keys(keys.inflightPrefix(table))) {
    const parsed = keys.parseInflight(key)
    if (!parsed || parsed.table !== table) continue
    const kinds = batches.get(parsed.batch) ?? []
    kinds.push(parsed.kind)
    batches.set(parsed.batch, kinds)
  }
  return new Map([...batches].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Reads the full content of one in-flight batch. */
export async function readBatch(
  ipc: Ipc,
  keys: KeyLayout,
  table: string,
  batch: string,
  kinds: PendingKind[],
): Promise<BatchContent> {
  const content: BatchContent = {}
  for (const kind of kinds) {
    const key = keys.inflight(table, batch, kind)
    content[kind] = kind === 'ins' || kind === 'ops' ? await ipc.lrange(key, 0, -1) : await ipc.hgetall(key)
  }
  return content
}
