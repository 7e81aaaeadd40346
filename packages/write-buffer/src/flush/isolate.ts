import { type Executor, isDataError, type StatementCounter } from './sql-util.js'

/** What applying one chunk needs: its encoding, its statement(s), and what to record once kept. */
export interface ChunkHandlers<T, P, R> {
  /** Encodes the chunk's statement(s) (no I/O). */
  prepare: (items: T[]) => P
  /**
   * Sends the prepared statement(s). Must send the first one before it returns (so the next
   * chunk is encoded while the database runs it) and must not change outside state: the
   * savepoint may roll back.
   */
  apply: (tx: Executor, prepared: P) => Promise<R>
  /** Called once the chunk's savepoint is released (its writes are kept). */
  onApplied: (items: T[], result: R) => void
  /** Called with each item the database refused on its own. */
  onPoison: (item: T, error: unknown) => void
  /**
   * Splits an item that holds several rows (a run of COPY text) into smaller items, to isolate a
   * poison row in it; `[item]` when it holds one. Without it, every item is one row.
   */
  split?: (item: T) => T[]
}

/**
 * Applies every chunk inside one savepoint, one statement at a time, encoding chunk k+1 while
 * the database runs chunk k. When the database refuses some row (a data error), the savepoint is
 * rolled back and each chunk is applied again on its own with {@link applyIsolated}, which
 * isolates the poison rows.
 *
 * Why one savepoint, not one per chunk: the clean case, by far the common one, then costs two
 * statements per flush instead of two per 1,000 rows. Why not several statements in flight on
 * the connection: node-postgres deprecates queueing queries on a busy client.
 */
export async function applyChunks<T, P, R>(
  tx: Executor,
  chunks: T[][],
  handlers: ChunkHandlers<T, P, R>,
  counter: StatementCounter,
): Promise<void> {
  if (chunks.length === 0) return
  if (chunks.length === 1) return applyIsolated(tx, chunks[0]!, handlers, counter)
  let results: R[] | undefined
  try {
    counter.statements += 2
    results = await tx.transaction(async (savepoint) => {
      const out: R[] = []
      let prepared = handlers.prepare(chunks[0]!)
      for (let i = 0; i < chunks.length; i++) {
        const running = handlers.apply(savepoint, prepared)
        const next = chunks[i + 1]
        if (next) prepared = handlers.prepare(next)
        out.push(await running)
      }
      return out
    })
  } catch (error) {
    if (!isDataError(error)) throw error
  }
  if (results) {
    chunks.forEach((chunk, i) => {
      handlers.onApplied(chunk, results[i] as R)
    })
    return
  }
  for (const chunk of chunks) await applyIsolated(tx, chunk, handlers, counter)
}

/**
 * Runs `apply` on `items` inside a savepoint. When the database refuses the data (constraint
 * violation, bad value), the savepoint is rolled back and the items are bisected until each
 * poison item is alone: it goes to `onPoison`, the others are applied. Any other error (the
 * connection, a deadlock) fails the whole transaction as usual.
 *
 * Cost: a clean chunk pays one savepoint; a chunk of n items with one poison item pays about
 * 2·log2(n) more statements.
 */
export async function applyIsolated<T, P, R>(
  tx: Executor,
  items: T[],
  handlers: ChunkHandlers<T, P, R>,
  counter: StatementCounter,
): Promise<void> {
  if (items.length === 0) return
  let result: { value: R } | undefined
  try {
    counter.statements += 2
    const prepared = handlers.prepare(items)
    result = { value: await tx.transaction((savepoint) => handlers.apply(savepoint, prepared)) }
  } catch (error) {
    if (!isDataError(error)) throw error
    const [only] = items
    const parts = items.length === 1 && only !== undefined && handlers.split ? handlers.split(only) : items
    if (parts.length === 1 && only !== undefined) {
      handlers.onPoison(only, error)
      return
    }
    const middle = Math.ceil(parts.length / 2)
    await applyIsolated(tx, parts.slice(0, middle), handlers, counter)
    await applyIsolated(tx, parts.slice(middle), handlers, counter)
    return
  }
  handlers.onApplied(items, result.value)
}
