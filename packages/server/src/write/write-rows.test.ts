import { PGlite } from '@electric-sql/pglite'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import { sql } from 'drizzle-orm'
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres'
import { bigint, boolean, integer, jsonb, numeric, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveModels } from '../model/resolve-models.js'
import { defineTidesyncTables } from '../schema/metadata.js'
import type { TidesyncDb } from '../types.js'
import { readCurrentMany } from './current-state.js'
import { writeRows } from './write-rows.js'

/**
 * `writeRows` and `readCurrentMany` are hand-written statements: each must give exactly what
 * drizzle's builders give for the same input (defaults, `$defaultFn`, `$onUpdate`, value types
 * and their decoding), on PGlite and on PostgreSQL.
 */
let n = 0
const made = () => `made-${++n}`
const notes = pgTable('h2_notes', {
  uid: uuid('uid').primaryKey(),
  title: text('title').notNull(),
  done: boolean('done').notNull().default(false),
  rank: integer('rank').notNull().default(7),
  big: bigint('big', { mode: 'bigint' }),
  amount: numeric('amount'),
  at: timestamp('at', { withTimezone: true, precision: 3 }),
  tags: jsonb('tags'),
  madeBy: text('made_by').$defaultFn(made),
})
const stamped = pgTable('h2_stamped', {
  uid: uuid('uid').primaryKey(),
  title: text('title').notNull(),
  touched: text('touched').$onUpdate(() => 'touched'),
})
const DDL = [
  `CREATE TABLE h2_notes (uid uuid PRIMARY KEY, title text NOT NULL, done boolean NOT NULL DEFAULT false,
    rank integer NOT NULL DEFAULT 7, big bigint, amount numeric, at timestamp(3) with time zone, tags jsonb, made_by text)`,
  `CREATE TABLE h2_stamped (uid uuid PRIMARY KEY, title text NOT NULL, touched text)`,
]
const models = resolveModels({ notes: { table: notes }, stamped: { table: stamped } }, false)
const uid = (i: number) => `0190${String(i).padStart(4, '0')}-0000-7000-8000-000000000000`

function suite(name: string, open: () => Promise<{ db: TidesyncDb; close: () => Promise<void> }>) {
  describe(name, () => {
    let opened: { db: TidesyncDb; close: () => Promise<void> } | undefined
    const db = async () => {
      if (!opened) {
        opened = await open()
        for (const statement of DDL) await opened.db.execute(sql.raw(statement))
      }
      return opened.db
    }
    afterAll(async () => opened?.close())

    it('inserts and updates rows as drizzle builders do, in one statement', async () => {
      const d = await db()
      const model = models.get('notes')!
      const full = {
        title: 'a',
        done: true,
        rank: 3,
        big: 9007199254740993n,
        amount: '12.50',
        at: new Date('2026-01-02T03:04:05.678Z'),
        tags: { a: [1, 'x'] },
      }
      const rows = [
        { uid: uid(1), ...full },
        { uid: uid(2), title: 'b' },
        { uid: uid(3), title: 'c', tags: null },
      ]
      n = 0
      const expected = (await d.insert(notes).values(rows).returning()) as Array<Record<string, unknown>>
      await d.execute(sql.raw('DELETE FROM h2_notes'))
      n = 0
      const written = await d.transaction((tx) => writeRows(tx, model, rows, []))
      expect(rows.map((r) => written.get(r.uid))).toEqual(expected)

      // Updates of two column sets next to a new row, all in one statement.
      const patch = [
        { uid: uid(1), fields: { title: 'a2', tags: ['t'] } },
        { uid: uid(2), fields: { at: new Date('2027-01-01T00:00:00.001Z'), big: -5n } },
        { uid: uid(3), fields: { title: 'c2', tags: { b: null } } },
      ]
      const updated = await d.transaction((tx) => writeRows(tx, model, [{ uid: uid(4), title: 'd' }], patch))
      const [after] = [await d.select().from(notes)]
      const byUid = new Map(after!.map((row) => [row.uid, row]))
      for (const u of [uid(1), uid(2), uid(3), uid(4)]) expect(updated.get(u)).toEqual(byUid.get(u))
      expect(updated.get(uid(1))).toMatchObject({ title: 'a2', tags: ['t'], big: 9007199254740993n })
      expect(updated.get(uid(2))).toMatchObject({ big: -5n, at: new Date('2027-01-01T00:00:00.001Z') })
      expect(updated.get(uid(4))).toMatchObject({ title: 'd', rank: 7, done: false, madeBy: 'made-4' })
    })

    it('updates a model with $onUpdate columns as drizzle does (the column is set too)', async () => {
      const d = await db()
      const model = models.get('stamped')!
      await d.insert(stamped).values({ uid: uid(1), title: 'x', touched: 'never' })
      const written = await d.transaction((tx) =>
        writeRows(tx, model, [{ uid: uid(2), title: 'y' }], [{ uid: uid(1), fields: { title: 'x2' } }]),
      )
      expect(written.get(uid(1))).toEqual({ uid: uid(1), title: 'x2', touched: 'touched' })
      // On insert, $onUpdate stands in for a missing default (as in drizzle's insert).
      expect(written.get(uid(2))).toEqual({ uid: uid(2), title: 'y', touched: 'touched' })
    })

    it('readCurrentMany reads rows as a drizzle select does, with their scope and metadata', async () => {
      const d = await db()
      const tables = defineTidesyncTables({ prefix: 'h2_' })
      const model = models.get('notes')!
      const states = await d.transaction((tx) =>
        readCurrentMany(
          tx,
          { db: d, tables },
          model,
          [
            { uids: [uid(1), uid(9)], scopeSql: sql`${notes.title} = 'a2'` },
            { uids: [uid(2)], scopeSql: undefined },
            { uids: [uid(3)], scopeSql: sql`${notes.title} = 'nope'` },
          ],
          { meta: false },
        ),
      )
      const rows = new Map((await d.select().from(notes)).map((row) => [row.uid, row]))
      expect(states.get(uid(1))).toMatchObject({ row: rows.get(uid(1)), inScope: true, meta: null })
      expect(states.get(uid(2))).toMatchObject({ row: rows.get(uid(2)), inScope: true })
      expect(states.get(uid(3))).toMatchObject({ row: rows.get(uid(3)), inScope: false })
      expect(states.get(uid(9))).toEqual({ row: null, json: null, inScope: false, meta: null })
      expect((states.get(uid(1))!.json as Record<string, unknown>).made_by).toBe('made-1')
    })
  })
}

suite('writeRows on PGlite', async () => {
  const client = new PGlite()
  return { db: drizzlePglite(client) as unknown as TidesyncDb, close: () => client.close() }
})

const hasPostgres = await requireServer('postgres')
describe.runIf(hasPostgres)('PostgreSQL server', () => {
  suite('writeRows on PostgreSQL', async () => {
    const database = await createTestDatabase('ts_write_rows')
    const pool = new pg.Pool({ connectionString: database.url, max: 2 })
    return {
      db: drizzleNodePg(pool) as unknown as TidesyncDb,
      close: async () => {
        await pool.end()
        await database.drop()
      },
    }
  })
})
