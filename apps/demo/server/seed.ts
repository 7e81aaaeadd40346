import type { TidesyncDb } from '@tidesync/server'
import { sql } from 'drizzle-orm'
import { notes } from '../shared/schema.js'

/**
 * Inserts `count` sample notes straight into an empty notes table, as data that existed before
 * anyone synced: tidesync serves such rows in a client's initial load (they have no entries in
 * its change log, so only an empty database is seeded: a window that synced before would not
 * learn about them from a delta pull). One statement, so 10,000 notes take a moment; a fresh
 * browser window then shows the initial-sync progress bar. Returns false when notes existed.
 */
export async function seedNotes(db: TidesyncDb, count: number): Promise<boolean> {
  if ((await db.select({ uid: notes.uid }).from(notes).limit(1)).length > 0) return false
  await db.execute(sql`
    INSERT INTO notes (uid, title, body, likes, author, created_at)
    SELECT gen_random_uuid(), 'Sample note ' || n,
           'A sample note, number ' || n || '. ' || repeat('Lorem ipsum dolor sit amet. ', 4),
           n % 17, 'Seed', now() - n * interval '1 second'
    FROM generate_series(1, ${count}::int) AS n`)
  return true
}
