import { boolean, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/** The test schema: the same drizzle tables serve the real server and the client. */
export const todos = pgTable('todos', {
  uid: uuid('uid').primaryKey(),
  title: text('title').notNull(),
  done: boolean('done').notNull().default(false),
  projectId: text('project_id').notNull().default('inbox'),
  likes: integer('likes').notNull().default(0),
  dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }),
  tags: jsonb('tags').$type<string[]>(),
})

export const notes = pgTable('notes', {
  uid: uuid('uid').primaryKey(),
  body: text('body').notNull().default(''),
})

export const schema = { todos, notes }

export const modelOptions = { todos: { counters: ['likes'], indexes: ['projectId'] } }
