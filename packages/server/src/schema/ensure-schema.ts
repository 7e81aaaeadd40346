import { sql } from 'drizzle-orm'
import type { TidesyncDb } from '../types.js'
import { type TidesyncTables, tidesyncTables } from './metadata.js'

/** The DDL of the metadata tables (idempotent: `IF NOT EXISTS` everywhere), one statement each. */
export function schemaStatements(tables: TidesyncTables = tidesyncTables): string[] {
  const p = tables.prefix
  return [
    `CREATE SEQUENCE IF NOT EXISTS "${p}rev_seq"`,
    `CREATE TABLE IF NOT EXISTS "${p}meta" (
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "created_at" timestamp(3) with time zone NOT NULL,
      "updated_at" timestamp(3) with time zone NOT NULL,
      "deleted_at" timestamp(3) with time zone,
      "deleted_clock" text,
      "rev" bigint NOT NULL,
      "clocks" jsonb NOT NULL DEFAULT '{}'::jsonb,
      PRIMARY KEY ("model", "uid"))`,
    `CREATE INDEX IF NOT EXISTS "${p}meta_model_rev" ON "${p}meta" ("model", "rev")`,
    `CREATE TABLE IF NOT EXISTS "${p}changes" (
      "rev" bigint PRIMARY KEY,
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "op" text NOT NULL,
      "before" jsonb,
      "committed_at" timestamp(3) with time zone NOT NULL DEFAULT now())`,
    `CREATE INDEX IF NOT EXISTS "${p}changes_model_rev" ON "${p}changes" ("model", "rev")`,
    `CREATE INDEX IF NOT EXISTS "${p}changes_committed_at" ON "${p}changes" ("committed_at")`,
    `CREATE TABLE IF NOT EXISTS "${p}applied" (
      "client_id" text NOT NULL,
      "change_id" text NOT NULL,
      "applied_at" timestamp(3) with time zone NOT NULL DEFAULT now(),
      PRIMARY KEY ("client_id", "change_id"))`,
    `CREATE INDEX IF NOT EXISTS "${p}applied_at" ON "${p}applied" ("applied_at")`,
    `CREATE TABLE IF NOT EXISTS "${p}state" ("key" text PRIMARY KEY, "value" bigint NOT NULL)`,
  ]
}

/**
 * Creates the metadata tables, sequence and indexes when they are missing. Safe to call at every
 * start-up, also from several servers at once (a transaction-scoped advisory lock orders them).
 *
 * @example
 * await ensureSchema(db)
 * installTidesync(io, { db, ipc, models })
 */
export async function ensureSchema(db: TidesyncDb, tables: TidesyncTables = tidesyncTables): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`${tables.prefix}ensure_schema`}))`)
    for (const statement of schemaStatements(tables)) await tx.execute(sql.raw(statement))
  })
}
