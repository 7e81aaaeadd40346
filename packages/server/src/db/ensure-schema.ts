import { handoffSchemaObjects } from '@tidesync/write-buffer'
import { sql } from 'drizzle-orm'
import { type TidesyncTables, tidesyncTables } from '../schema/metadata.js'
import type { TidesyncDb } from '../types.js'
import { rowsOf } from './types.js'

/** One metadata object (sequence, table or index) and the idempotent DDL that creates it. @internal */
export interface SchemaObject {
  /** Its name (unqualified: it lives in the first schema of the `search_path`, as the DDL does). */
  name: string
  statement: string
}

/** The metadata objects, in creation order (a table before its indexes). @internal */
export function schemaObjects(tables: TidesyncTables = tidesyncTables): SchemaObject[] {
  const p = tables.prefix
  return [
    { name: `${p}rev_seq`, statement: `CREATE SEQUENCE IF NOT EXISTS "${p}rev_seq"` },
    {
      name: `${p}meta`,
      statement: `CREATE TABLE IF NOT EXISTS "${p}meta" (
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "created_at" timestamp(3) with time zone NOT NULL,
      "updated_at" timestamp(3) with time zone NOT NULL,
      "deleted_at" timestamp(3) with time zone,
      "deleted_clock" text,
      "rev" bigint NOT NULL,
      "clocks" jsonb NOT NULL DEFAULT '{}'::jsonb,
      PRIMARY KEY ("model", "uid"))`,
    },
    {
      name: `${p}meta_model_rev`,
      statement: `CREATE INDEX IF NOT EXISTS "${p}meta_model_rev" ON "${p}meta" ("model", "rev")`,
    },
    {
      name: `${p}changes`,
      statement: `CREATE TABLE IF NOT EXISTS "${p}changes" (
      "rev" bigint PRIMARY KEY,
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "op" text NOT NULL,
      "before" jsonb,
      "captured" boolean NOT NULL DEFAULT false,
      "committed_at" timestamp(3) with time zone NOT NULL DEFAULT now())`,
    },
    {
      name: `${p}changes_model_rev`,
      statement: `CREATE INDEX IF NOT EXISTS "${p}changes_model_rev" ON "${p}changes" ("model", "rev")`,
    },
    {
      name: `${p}changes_committed_at`,
      statement: `CREATE INDEX IF NOT EXISTS "${p}changes_committed_at" ON "${p}changes" ("committed_at")`,
    },
    {
      // Installs older than change capture lack the column: the index stands for both.
      name: `${p}changes_captured`,
      statement: `DO $tidesync$ BEGIN
      ALTER TABLE "${p}changes" ADD COLUMN IF NOT EXISTS "captured" boolean NOT NULL DEFAULT false;
      CREATE INDEX IF NOT EXISTS "${p}changes_captured" ON "${p}changes" ("model", "rev") WHERE "captured";
      END $tidesync$`,
    },
    {
      name: `${p}applied`,
      statement: `CREATE TABLE IF NOT EXISTS "${p}applied" (
      "client_id" text NOT NULL,
      "change_id" text NOT NULL,
      "applied_at" timestamp(3) with time zone NOT NULL DEFAULT now(),
      PRIMARY KEY ("client_id", "change_id"))`,
    },
    {
      name: `${p}applied_at`,
      statement: `CREATE INDEX IF NOT EXISTS "${p}applied_at" ON "${p}applied" ("applied_at")`,
    },
    {
      name: `${p}state`,
      statement: `CREATE TABLE IF NOT EXISTS "${p}state" ("key" text PRIMARY KEY, "value" bigint NOT NULL)`,
    },
    // The write buffer's hand-off table (its `deferred` API), under the server's prefix.
    ...handoffSchemaObjects(`${p}handoffs`),
  ]
}

/** The DDL of the metadata tables (idempotent: `IF NOT EXISTS` everywhere), one statement each. */
export function schemaStatements(tables: TidesyncTables = tidesyncTables): string[] {
  return schemaObjects(tables).map((object) => object.statement)
}

/** `name` as a SQL string literal holding a quoted identifier, for `to_regclass`. */
function regclassLiteral(name: string): string {
  return `'${`"${name.replaceAll('"', '""')}"`.replaceAll("'", "''")}'`
}

/** The objects that do not exist yet: one catalog lookup, no lock on any table. */
async function missingObjects(db: TidesyncDb, objects: SchemaObject[]): Promise<SchemaObject[]> {
  const checks = objects.map((object, i) => `to_regclass(${regclassLiteral(object.name)}) IS NULL AS "m${i}"`)
  const row = rowsOf<Record<string, unknown>>(await db.execute(sql.raw(`SELECT ${checks.join(', ')}`)))[0]
  return objects.filter((_, i) => row?.[`m${i}`] !== false)
}

/**
 * Creates the metadata tables, sequence and indexes when they are missing. Safe to call at every
 * start-up, also from several servers at once and while other servers take writes.
 *
 * Why not one transaction with every `IF NOT EXISTS` statement: `CREATE INDEX IF NOT EXISTS`
 * takes a SHARE lock on its table even when the index exists, and a transaction keeps it; holding
 * those locks on several tables, in another order than a push takes its locks, deadlocks with
 * pushes (40P01). So: one catalog lookup first, and no DDL at all when everything exists (the
 * common case, every restart); otherwise each missing object in its own short transaction, which
 * holds at most one table lock, behind a transaction-scoped advisory lock that orders concurrent
 * callers (concurrent `CREATE TABLE IF NOT EXISTS` of one name can fail).
 *
 * @example
 * await ensureSchema(db)
 * installTidesync(io, { db, ipc, models })
 */
export async function ensureSchema(db: TidesyncDb, tables: TidesyncTables = tidesyncTables): Promise<void> {
  const missing = await missingObjects(db, schemaObjects(tables))
  const lockKey = `${tables.prefix}ensure_schema`
  for (const object of missing) {
    await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`)
      await tx.execute(sql.raw(object.statement))
    })
  }
}
