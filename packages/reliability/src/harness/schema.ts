import { boolean, integer, pgTable, text, uuid } from 'drizzle-orm/pg-core'

/**
 * The one model every reliability test syncs. `owner` and `title` are written by the record's
 * creator only, `done` and `note` by anyone (per-field last-write-wins across clients), and
 * `likes` is a counter (deltas added through the write buffer).
 */
export const items = pgTable('items', {
  uid: uuid('uid').primaryKey(),
  owner: text('owner').notNull(),
  title: text('title').notNull(),
  done: boolean('done').notNull().default(false),
  note: text('note').notNull().default(''),
  likes: integer('likes').notNull().default(0),
})

export const schema = { items }

export const ITEMS_DDL = `CREATE TABLE IF NOT EXISTS items (
  uid uuid PRIMARY KEY,
  owner text NOT NULL,
  title text NOT NULL,
  done boolean NOT NULL DEFAULT false,
  note text NOT NULL DEFAULT '',
  likes integer NOT NULL DEFAULT 0
)`

/** The columns compared between clients and the database. */
export const COLUMNS = ['uid', 'owner', 'title', 'done', 'note', 'likes'] as const

export interface ItemRow {
  uid: string
  owner: string
  title: string
  done: boolean
  note: string
  likes: number
}
