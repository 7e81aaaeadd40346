/**
 * The demo's drizzle schema: the one source of the tables and of the record types, imported by
 * the server (tables, DDL, write buffer) and by the browser app (the tidesync client reads its
 * columns and types from the same tables).
 */
import { integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/** A shared note. Synced by tidesync: created, edited and deleted offline, merged per field. */
export const notes = pgTable('notes', {
  uid: uuid('uid').primaryKey(),
  title: text('title').notNull().default(''),
  body: text('body').notNull().default(''),
  /** A counter: clients send increments, the server adds them up through the write buffer. */
  likes: integer('likes').notNull().default(0),
  /** Who created the note (a display name). */
  author: text('author').notNull().default(''),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3, mode: 'date' })
    .notNull()
    .defaultNow(),
})

/**
 * The activity feed: one row per thing someone did. Not synced: the server appends rows through
 * the write buffer (buffered inserts, 1,000 per statement) and sends new entries live.
 */
export const activity = pgTable('activity', {
  id: uuid('id').primaryKey(),
  at: timestamp('at', { withTimezone: true, precision: 3, mode: 'date' }).notNull(),
  who: text('who').notNull(),
  action: text('action', { enum: ['created', 'edited', 'deleted', 'liked'] }).notNull(),
  noteUid: uuid('note_uid').notNull(),
  noteTitle: text('note_title').notNull().default(''),
})

export type Note = typeof notes.$inferSelect
export type ActivityRow = typeof activity.$inferSelect
export type ActivityAction = ActivityRow['action']

/** The tables the browser keeps in IndexedDB and syncs (the client's `schema`). */
export const syncedSchema = { notes }

/** Counter columns per synced model: the same list configures the server and the client. */
export const counters = { notes: ['likes'] } satisfies Record<keyof typeof syncedSchema, string[]>
