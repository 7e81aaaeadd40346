import { bigint, bigserial, integer, pgTable } from 'drizzle-orm/pg-core'

export const CLUSTER_ROWS = 25

export const clusterCounters = pgTable('cluster_counters', {
  id: integer('id').primaryKey(),
  n: bigint('n', { mode: 'number' }).notNull().default(0),
})

/** No unique constraint on (worker, i): an insert applied twice would show. */
export const clusterEvents = pgTable('cluster_events', {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  worker: integer('worker').notNull(),
  i: integer('i').notNull(),
})

export const CLUSTER_DDL = `
create table cluster_counters (id integer primary key, n bigint not null default 0);
insert into cluster_counters (id) select g from generate_series(1, ${CLUSTER_ROWS}) g;
create table cluster_events (seq bigserial primary key, worker integer not null, i integer not null);
`
