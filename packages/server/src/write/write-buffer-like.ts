import type { PgTable } from 'drizzle-orm/pg-core'

/**
 * The part of `@tidesync/write-buffer` the server uses (structural, so any compatible buffer
 * fits): per-row increments and last-write-wins updates, pending-aware reads, flush.
 */
export interface WriteBufferRowLike {
  increment(column: string, n?: number): unknown
  update(fields: Record<string, unknown>): unknown
  get(column: string): Promise<unknown>
}

export interface WriteBufferTableLike {
  where(key: unknown): WriteBufferRowLike
  insert(row: Record<string, unknown>): unknown
  flush?(): Promise<unknown>
}

export interface WriteBufferLike {
  // biome-ignore lint/suspicious/noExplicitAny: the buffer is typed per drizzle table
  table(table: PgTable | any): WriteBufferTableLike
  flush(): Promise<unknown>
}
