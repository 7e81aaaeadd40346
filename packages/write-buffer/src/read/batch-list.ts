import type { Ipc } from '@tidesync/ipc'
import { listBatches } from '../flush/plan.js'
import type { KeyLayout, PendingKind } from '../store/keys.js'

/** How long a listing stays usable, whatever the version says (see `InflightBatchList`). */
const MAX_AGE_MS = 1000

/**
 * The in-flight batches of each table, as `get()` needs them, remembered per seqlock version.
 *
 * Why: listing them is a `keys` call, a SCAN of the whole IPC keyspace on Redis, and a read did
 * one per row and column. In-flight keys only appear and vanish while the table's seqlock is
 * odd (a flush's claim and commit, a checkpoint's seal, recovery: every writer goes through
 * `asWriter`/`beginWrite`), so a listing made inside a read window confirmed at an even version
 * holds for as long as the version stays the same: the next reads at that version reuse it.
 * A version never comes back (it only grows) unless the IPC store lost it (a restart without
 * persistence); listings older than a second are not reused, so that a store that lost
 * everything and counted up to the same version again cannot make a read skip a batch.
 */
export class InflightBatchList {
  private readonly listings = new Map<
    string,
    { version: number; at: number; batches: Map<string, PendingKind[]> }
  >()

  constructor(private readonly now: () => number) {}

  /** The table's in-flight batches (oldest first) at `version`, remembered or listed now. */
  async list(ipc: Ipc, keys: KeyLayout, table: string, version: number): Promise<Map<string, PendingKind[]>> {
    const known = this.listings.get(table)
    if (known && known.version === version && this.now() - known.at < MAX_AGE_MS) return known.batches
    return listBatches(ipc, keys, table)
  }

  /** Remembers a listing made inside a read window that was confirmed at `version`. */
  remember(table: string, version: number, batches: Map<string, PendingKind[]>): void {
    const known = this.listings.get(table)
    if (known?.version === version && known.batches === batches) return
    this.listings.set(table, { version, at: this.now(), batches })
  }
}
