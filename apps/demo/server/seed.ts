import type { TidesyncDb } from '@tidesync/server'
import { sql } from 'drizzle-orm'
import { notes } from '../shared/schema.js'

/**
 * Inserts `count` sample notes into an empty notes table with plain SQL, as another program
 * would: change capture logs them like any write, so open windows get them live and a fresh
 * window in its initial load. Only an empty table is seeded, so a restart does not add more.
 * One statement, so 10,000 notes take a moment; a fresh browser window then shows the
 * initial-sync progress bar. Returns false when notes existed.
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
