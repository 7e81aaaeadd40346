import { sql } from 'drizzle-orm'

/**
 * The transaction-local setting that tells change capture (`@tidesync/server`) who is writing.
 * Capture records every committed write to a synced table; a flush delivers writes made
 * earlier (their clocks were recorded when they were made), so the buffer's flush and
 * direct-write transactions say so, and capture logs their rows without giving the columns
 * they change a new clock. Without change capture the setting is read by nobody.
 */
export const CAPTURE_SETTING = 'tidesync.capture'
/** The value a write-buffer flush sets. */
export const FLUSH_CAPTURE_MODE = 'buffer'

/** The statement that tags the current transaction as a write-buffer flush. */
export const tagFlushTransaction = sql`select set_config(${CAPTURE_SETTING}, ${FLUSH_CAPTURE_MODE}, true)`
