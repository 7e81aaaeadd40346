import {
  bigint,
  boolean,
  customType,
  date,
  doublePrecision,
  integer,
  json,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core'

/** Tables the suites buffer. DDL below creates them (no migration tool in tests). */
export const counters = pgTable('wb_counters', {
  id: integer('id').primaryKey(),
  views: integer('views').notNull().default(0),
  likes: bigint('likes', { mode: 'number' }).notNull().default(0),
  title: text('title'),
  score: numeric('score', { precision: 12, scale: 2 }).default('0'),
  updatedAt: timestamp('updated_at', { withTimezone: true }),
  meta: jsonb('meta'),
})

export const stats = pgTable(
  'wb_stats',
  {
    postId: integer('post_id').notNull(),
    day: text('day').notNull(),
    views: integer('views').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.postId, t.day] })],
)

export const events = pgTable('wb_events', {
  id: serial('id').primaryKey(),
  kind: text('kind').notNull(),
  userId: integer('user_id').notNull(),
  payload: jsonb('payload'),
  createdAt: timestamp('created_at').defaultNow().notNull(),
})

export const tokens = pgTable('wb_tokens', {
  id: uuid('id')
    .primaryKey()
    .$defaultFn(() => crypto.randomUUID()),
  owner: integer('owner').notNull(),
  hits: integer('hits').notNull().default(0),
})

const bytea = customType<{ data: Buffer; driverData: string }>({
  dataType: () => 'bytea',
  toDriver: (value) => `\\x${value.toString('hex')}`,
})

/** One column of most kinds, for inserts whose values must arrive exactly (COPY text and INSERT alike). */
export const values = pgTable('wb_values', {
  id: serial('id').primaryKey(),
  label: text('label'),
  n: integer('n'),
  big: bigint('big', { mode: 'bigint' }),
  amount: numeric('amount', { precision: 12, scale: 2 }),
  ratio: doublePrecision('ratio'),
  flag: boolean('flag'),
  at: timestamp('at', { withTimezone: true }),
  day: date('day'),
  doc: jsonb('doc'),
  raw: json('raw'),
  ref: uuid('ref'),
  bytes: bytea('bytes'),
  tags: text('tags').array(),
})

/** Declares no primary key: the buffer's `primaryKey` option (default 'id') or a table option names it. */
export const noKey = pgTable('wb_nokey', {
  id: integer('id'),
  code: text('code'),
  hits: integer('hits').notNull().default(0),
})

export const DDL = `
create table if not exists wb_counters (
  id integer primary key, views integer not null default 0, likes bigint not null default 0,
  title text, score numeric(12,2) default 0, updated_at timestamptz, meta jsonb);
create table if not exists wb_stats (
  post_id integer not null, day text not null, views integer not null default 0, primary key (post_id, day));
create table if not exists wb_events (
  id serial primary key, kind text not null, user_id integer not null check (user_id > 0),
  payload jsonb, created_at timestamp not null default now());
create table if not exists wb_tokens (id uuid primary key, owner integer not null, hits integer not null default 0);
create table if not exists wb_nokey (id integer, code text, hits integer not null default 0);
create table if not exists wb_values (
  id serial primary key, label text, n integer, big bigint, amount numeric(12,2), ratio double precision,
  flag boolean, at timestamptz, day date, doc jsonb, raw json, ref uuid, bytes bytea, tags text[]);
`

/** Empties every table between tests. DELETE, not TRUNCATE: on tables this small it is ~100x cheaper. */
export const RESET = `
delete from wb_counters; delete from wb_stats; delete from wb_events; delete from wb_tokens; delete from wb_nokey;
delete from wb_values; alter sequence wb_events_id_seq restart; alter sequence wb_values_id_seq restart;
delete from tidesync_write_buffer_batches; delete from tidesync_write_buffer_journal;
delete from tidesync_write_buffer_dead_letters; delete from tidesync_write_buffer_receipts;
`
