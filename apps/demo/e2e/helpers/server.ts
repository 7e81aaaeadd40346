import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tidesyncMeta } from '@tidesync/server'
import { asc, eq } from 'drizzle-orm'
import { inject } from 'vitest'
import { type DemoServer, type DemoServerOptions, startDemoServer } from '../../server/demo-server.js'
import { notes } from '../../shared/schema.js'

const quiet = {
  debug() {},
  info() {},
  warn: (message: string, ...meta: unknown[]) => console.warn(message, ...meta),
  error: (message: string, ...meta: unknown[]) => console.error(message, ...meta),
}

export interface TestServer extends DemoServer {
  /** The notes in the database, by uid (counters include what the write buffer still holds after a flush). */
  notesInDatabase(): Promise<Array<{ uid: string; title: string; body: string; likes: number }>>
  /** Whether the database keeps a tombstone for the note. */
  isDeletedInDatabase(uid: string): Promise<boolean>
}

/**
 * A demo server on a free port serving the build of the global setup, with a fast write buffer.
 * Without `databaseUrl` it keeps PGlite (and the LMDB checkpoint) in a throwaway folder, as
 * `npm run demo` does in apps/demo/.data.
 */
export async function startTestServer(options: DemoServerOptions = {}): Promise<TestServer> {
  const folder = options.databaseUrl ? undefined : mkdtempSync(join(tmpdir(), 'tidesync-demo-data-'))
  let server: DemoServer
  try {
    server = await startDemoServer({
      port: 0,
      staticDir: inject('staticDir'),
      flushIntervalMs: 200,
      logger: quiet,
      ...(folder ? { dataDir: folder } : {}),
      ...options,
    })
  } catch (error) {
    if (folder) rmSync(folder, { recursive: true, force: true })
    throw error
  }
  const { db } = server.database
  return {
    ...server,
    async notesInDatabase() {
      await server.writeBuffer.flush()
      const rows = await db
        .select({ uid: notes.uid, title: notes.title, body: notes.body, likes: notes.likes })
        .from(notes)
        .orderBy(asc(notes.uid))
      return rows
    },
    async isDeletedInDatabase(uid) {
      const [meta] = await db.select().from(tidesyncMeta).where(eq(tidesyncMeta.uid, uid))
      const [row] = await db.select().from(notes).where(eq(notes.uid, uid))
      return !row && meta?.deletedAt != null
    },
    async close() {
      try {
        await server.close()
      } finally {
        if (folder) rmSync(folder, { recursive: true, force: true })
      }
    },
  }
}
