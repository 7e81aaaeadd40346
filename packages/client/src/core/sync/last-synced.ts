import type { ClientContext } from '../context.js'
import type { LocalDb } from '../db/database.js'

/**
 * The `_state` key holding when the last complete sync finished (ISO), so that
 * `status.lastSyncedAt` survives a reload: an app that opens offline can still say "last
 * synced 2 hours ago". @internal
 */
export const LAST_SYNCED_STATE_KEY = 'lastSyncedAt'

/** The stored time of the last complete sync, or null (never synced, or unreadable). @internal */
export async function loadLastSyncedAt(db: LocalDb): Promise<Date | null> {
  const stored = await db.state.get(LAST_SYNCED_STATE_KEY)
  if (typeof stored?.value !== 'string') return null
  const date = new Date(stored.value)
  return Number.isNaN(date.getTime()) ? null : date
}

/**
 * Stores the time of a complete sync, unless a later one is stored already (every tab on the
 * database writes here). A failure is logged, never thrown: the sync itself succeeded. @internal
 */
export async function saveLastSyncedAt(ctx: ClientContext, at: Date): Promise<void> {
  const { db } = ctx
  try {
    await db.dexie.transaction('rw', db.state, async () => {
      const stored = await loadLastSyncedAt(db)
      if (stored && stored.getTime() >= at.getTime()) return
      await db.state.put({ key: LAST_SYNCED_STATE_KEY, value: at.toISOString() })
    })
  } catch (error) {
    ctx.logger.warn('cannot store the last sync time', error)
  }
}
