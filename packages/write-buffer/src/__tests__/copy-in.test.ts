import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { describe, expect, test } from 'vitest'
import { copyInOf, copySupported, preloadCopy } from '../db/copy-in.js'

/** Which drizzle databases get COPY (no connection is made: only the session's shape is read). */
describe('COPY on the driver under drizzle', () => {
  test('node-postgres: once pg-copy-streams is loaded; its transactions (a checked-out client) COPY', async () => {
    const pool = new pg.Pool({ max: 1 })
    const db = drizzlePg(pool)
    preloadCopy(db)
    const client = new pg.Client()
    expect(await copyInOf(drizzlePg(client))).toBeTypeOf('function')
    expect(copySupported(db)).toBe(true)
    // A pool is not a client: COPY needs the transaction's connection.
    expect(await copyInOf(db)).toBeUndefined()
    await pool.end()
  })

  test('PGlite: COPY from a blob', async () => {
    const fake = { query: async () => ({ rows: [] }), exec: async () => [] }
    const db = drizzlePglite(fake as never)
    expect(copySupported(db)).toBe(true)
    expect(await copyInOf(db)).toBeTypeOf('function')
  })

  test('anything else: no COPY (the flush sends INSERTs)', async () => {
    expect(copySupported({})).toBe(false)
    expect(await copyInOf({ session: { client: {} } })).toBeUndefined()
    expect(await copyInOf(null)).toBeUndefined()
  })
})
