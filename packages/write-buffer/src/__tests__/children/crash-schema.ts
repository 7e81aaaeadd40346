import { bigint, bigserial, integer, pgTable, text } from 'drizzle-orm/pg-core'

/** Tables of the crash test. No unique constraint on `op`: an insert applied twice would show. */
export const crashCounters = pgTable('crash_counters', {
  id: integer('id').primaryKey(),
  n: bigint('n', { mode: 'number' }).notNull().default(0),
})

export const crashEvents = pgTable('crash_events', {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  op: text('op').notNull(),
})

export const CRASH_DDL = `
create table crash_counters (id integer primary key, n bigint not null default 0);
create table crash_events (seq bigserial primary key, op text not null);
`
