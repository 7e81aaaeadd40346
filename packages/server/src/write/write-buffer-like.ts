import type { PgTable } from 'drizzle-orm/pg-core'

/**
 * The part of `@tidesync/write-buffer` the server uses (structural, so any compatible buffer
 * fits): per-row increments (with receipts: applied at most once per receipt) and
 * last-write-wins updates, pending-aware reads, flush, and the receipt calls that let a
 * committed increment be handed over again after a crash.
 */
export interface WriteBufferRowLike {
  increment(column: string, n?: number, options?: { receipt?: string }): unknown
  update(fields: Record<string, unknown>): unknown
  get(column: string): Promise<unknown>
}

export interface WriteBufferTableLike {
  where(key: unknown): WriteBufferRowLike
  insert(row: Record<string, unknown>): unknown
  flush?(): Promise<unknown>
  /** Gives receipted increments again; skips receipts the database has applied. */
  redeliver(
    items: Array<{ key: string; column: string; delta: number; receipt: string }>,
  ): Promise<{ delivered: string[]; alreadyApplied: string[] }>
  /** Records receipts as applied in `tx`; returns those not recorded before. */
  claimReceipts(tx: unknown, receipts: string[]): Promise<Set<string>>
}

export interface WriteBufferLike {
  // biome-ignore lint/suspicious/noExplicitAny: the buffer is typed per drizzle table
  table(table: PgTable | any): WriteBufferTableLike
  flush(): Promise<unknown>
}
