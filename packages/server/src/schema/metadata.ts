import { defineHandoffTable } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  index,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core'

/**
 * The tables tidesync keeps beside the models. Put them in your drizzle schema (drizzle-kit
 * then migrates them) or call `ensureSchema(db)` at start-up.
 *
 * - `meta`: one row per (model, uid), kept after the record is deleted (tombstone): timestamps,
 *   the server revision of the last change and the HLC of the last write of each column.
 * - `changes`: the change log, one row per committed change with the record as it was before
 *   it; delta pulls read it by (model, rev), so their cost follows the number of changes.
 * - `applied`: the change ids applied per client, so a retried push applies once.
 * - `state`: small counters (how far the change log was pruned, per model).
 * - `handoffs`: counter deltas of committed changes not yet handed to the write buffer (written
 *   in the change's transaction, deleted once the buffer has them), so that a server that dies
 *   between the commit and the hand-off loses nothing: another one hands them over again, at
 *   most once thanks to the buffer's receipts. Owned by the write buffer's `deferred` API
 *   (`defineHandoffTable`); its `model` column holds the model name.
 */
export function defineTidesyncTables(options: { prefix?: string } = {}) {
  const prefix = options.prefix ?? 'tidesync_'
  const revSeq = pgSequence(`${prefix}rev_seq`)
  const meta = pgTable(
    `${prefix}meta`,
    {
      model: text('model').notNull(),
      uid: text('uid').notNull(),
      createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull(),
      updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull(),
      deletedAt: timestamp('deleted_at', { withTimezone: true, precision: 3 }),
      /** The HLC of the delete; a create with an older clock does not resurrect the record. */
      deletedClock: text('deleted_clock'),
      rev: bigint('rev', { mode: 'number' }).notNull(),
      clocks: jsonb('clocks').$type<Record<string, string>>().notNull().default({}),
    },
    (t) => [primaryKey({ columns: [t.model, t.uid] }), index(`${prefix}meta_model_rev`).on(t.model, t.rev)],
  )
  const changes = pgTable(
    `${prefix}changes`,
    {
      rev: bigint('rev', { mode: 'number' }).primaryKey(),
      model: text('model').notNull(),
      uid: text('uid').notNull(),
      op: text('op', { enum: ['upsert', 'delete'] }).notNull(),
      /** The row before the change (`to_jsonb`, database column names); null when it did not exist. */
      before: jsonb('before'),
      /** Written by change capture (a write made outside tidesync's services): the capture reader publishes it. */
      captured: boolean('captured').notNull().default(false),
      committedAt: timestamp('committed_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    },
    (t) => [
      index(`${prefix}changes_model_rev`).on(t.model, t.rev),
      index(`${prefix}changes_committed_at`).on(t.committedAt),
      index(`${prefix}changes_captured`).on(t.model, t.rev).where(sql`${t.captured}`),
    ],
  )
  const applied = pgTable(
    `${prefix}applied`,
    {
      clientId: text('client_id').notNull(),
      changeId: text('change_id').notNull(),
      appliedAt: timestamp('applied_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    },
    (t) => [primaryKey({ columns: [t.clientId, t.changeId] }), index(`${prefix}applied_at`).on(t.appliedAt)],
  )
  const state = pgTable(`${prefix}state`, {
    key: text('key').primaryKey(),
    value: bigint('value', { mode: 'number' }).notNull(),
  })
  const handoffs = defineHandoffTable(`${prefix}handoffs`)
  return { prefix, revSeq, meta, changes, applied, state, handoffs }
}

export type TidesyncTables = ReturnType<typeof defineTidesyncTables>

/** The default tables: `tidesync_meta`, `tidesync_changes`, `tidesync_applied`, `tidesync_state`. */
export const tidesyncTables: TidesyncTables = defineTidesyncTables()
export const tidesyncMeta = tidesyncTables.meta
export const tidesyncChanges = tidesyncTables.changes
export const tidesyncApplied = tidesyncTables.applied
export const tidesyncState = tidesyncTables.state
export const tidesyncRevSeq = tidesyncTables.revSeq
export const tidesyncHandoffs = tidesyncTables.handoffs
