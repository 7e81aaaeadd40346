import { createHash } from 'node:crypto'
import { CAPTURE_SETTING, FLUSH_CAPTURE_MODE } from '@tidesync/write-buffer'
import { getTableConfig, type PgColumn } from 'drizzle-orm/pg-core'
import type { ResolvedModel } from '../../model/resolve-models.js'
import type { TidesyncTables } from '../../schema/metadata.js'
import { REVISION_LOCK_CLASS } from '../locks.js'

/**
 * The SQL of change capture: triggers that record every committed write to a synced table in
 * the change log, whoever made it. Why triggers and why in two steps: see the server README,
 * "Change capture". In short:
 *
 * 1. A statement trigger per model and event (INSERT, UPDATE, DELETE, TRUNCATE) stages each
 *    written row (its uid, the row before, the synced columns whose value changed) in an
 *    unlogged table, in the writer's transaction. It takes no lock, so a writer's other
 *    statements never wait on capture.
 * 2. At commit, a deferred constraint trigger (once per transaction) takes the revision locks
 *    of the models it touched, sorted (the order tidesync's own writes take them), gives each
 *    staged row a revision, writes the change log and the metadata (server clocks for the
 *    changed columns), notifies the capture reader and empties the staging table. The locks
 *    are held only for these few statements and the commit, so revisions of a model commit in
 *    order as they always have.
 *
 * Tidesync's own writes set `tidesync.capture = 'off'` in their transaction (they write the
 * change log themselves, with the writers' clocks): nothing is logged twice. Write-buffer
 * flushes set it to `'buffer'`: their rows are logged, but the columns they change keep their
 * clocks (a flush delivers an earlier write; its clock was recorded then).
 */

/** Every statement checks this setting first (transaction-local, set with `set_config`). */
export { CAPTURE_SETTING }
export const CAPTURE_OFF = 'off'
/** Bumped when the generated SQL changes shape: installed objects of another version are replaced. */
const CAPTURE_VERSION = 1

/** The names of the shared capture objects under a metadata prefix. @internal */
export function captureNames(tables: TidesyncTables) {
  const p = tables.prefix
  return {
    staged: `${p}capture`,
    stagedSeq: `${p}capture_seq`,
    pendingTx: `${p}capture_txs`,
    commitFunction: `${p}capture_commit`,
    commitTrigger: `${p}capture_commit`,
    /** The NOTIFY channel: its payload is the comma-separated models of the commit. */
    channel: `${p}capture`,
  }
}

/** A double-quoted identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** A SQL string literal. */
export function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`
}

/** The table of a model, schema-qualified when its drizzle table names a schema. */
export function qualifiedTable(model: ResolvedModel<unknown>): string {
  const { schema, name } = getTableConfig(model.table)
  return schema ? `${ident(schema)}.${ident(name)}` : ident(name)
}

/** A short stable hash of generated SQL, written into each function so a re-install can tell. */
function fingerprint(text: string): string {
  return createHash('sha256').update(`${CAPTURE_VERSION}\n${text}`).digest('hex').slice(0, 16)
}

/** The marker every generated function body starts with: `-- tidesync capture <hash>`. */
export function marker(hash: string): string {
  return `-- tidesync capture ${hash}`
}

/** A generated function and the fingerprint written into its body. @internal */
export interface CaptureFunction {
  name: string
  hash: string
  statement: string
}

/** Tables, sequence and index the capture shares across models (idempotent DDL). @internal */
export function sharedCaptureTables(tables: TidesyncTables): string[] {
  const n = captureNames(tables)
  return [
    // Staged rows live only inside their writer's transaction (emptied at its commit, gone with
    // its rollback), so the table needs no WAL: UNLOGGED.
    `CREATE SEQUENCE IF NOT EXISTS ${ident(n.stagedSeq)}`,
    `CREATE UNLOGGED TABLE IF NOT EXISTS ${ident(n.staged)} (
      "tx" xid8 NOT NULL DEFAULT pg_current_xact_id(),
      "seq" bigint NOT NULL DEFAULT nextval('${n.stagedSeq}'),
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "op" text NOT NULL,
      "before" jsonb,
      "changed" text[] NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS ${ident(`${n.staged}_by_tx`)} ON ${ident(n.staged)} ("tx")`,
    `CREATE UNLOGGED TABLE IF NOT EXISTS ${ident(n.pendingTx)} ("tx" xid8 PRIMARY KEY)`,
  ]
}

/**
 * The commit step, shared by every model: revisions, change log, metadata, notify.
 *
 * Clocks: a captured write gets one clock per record, newer than the wall clock of the database
 * and than every clock the record holds (its columns' and its delete's), so it wins over what
 * came before it and loses to client edits made after it. The format is the protocol's HLC
 * (`<ISO time>-<4 hex counter>-<node>`, node `sql`); clocks compare in byte order (`COLLATE "C"`).
 */
export function commitFunction(tables: TidesyncTables): CaptureFunction {
  const n = captureNames(tables)
  const p = tables.prefix
  const meta = ident(`${p}meta`)
  const changes = ident(`${p}changes`)
  const body = `
DECLARE
  m text;
  models text;
  wall timestamptz := date_trunc('milliseconds', clock_timestamp());
  wall_hlc text := to_char(wall AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '-0000-sql';
BEGIN
  DELETE FROM ${ident(n.pendingTx)} WHERE "tx" = pg_current_xact_id();
  SELECT string_agg(DISTINCT s."model", ',' ORDER BY s."model") INTO models
    FROM ${ident(n.staged)} s WHERE s."tx" = pg_current_xact_id();
  IF models IS NULL THEN RETURN NULL; END IF;
  -- The revision locks, sorted as tidesync's own writes take them: revisions of a model commit in order.
  FOR m IN SELECT DISTINCT s."model" COLLATE "C" FROM ${ident(n.staged)} s
           WHERE s."tx" = pg_current_xact_id() ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(${REVISION_LOCK_CLASS}, hashtext(m));
  END LOOP;
  WITH s AS (
    SELECT st.*, row_number() OVER (ORDER BY st."seq") AS n
      FROM ${ident(n.staged)} st WHERE st."tx" = pg_current_xact_id()
  ), r AS (
    SELECT v."rev", row_number() OVER (ORDER BY v."rev") AS n
      FROM (SELECT nextval('${p}rev_seq') AS "rev" FROM generate_series(1, (SELECT count(*) FROM s))) v
  ), numbered AS MATERIALIZED (
    SELECT r."rev", s."model", s."uid", s."op", s."before", s."changed", s."seq" FROM s JOIN r ON r.n = s.n
  ), logged AS (
    INSERT INTO ${changes} ("rev", "model", "uid", "op", "before", "captured", "committed_at")
      SELECT "rev", "model", "uid", "op", "before", true, wall FROM numbered
  ), cols AS (
    SELECT nb."model", nb."uid", coalesce(array_agg(DISTINCT c) FILTER (WHERE c IS NOT NULL), '{}') AS "changed"
      FROM numbered nb LEFT JOIN LATERAL unnest(nb."changed") c ON true GROUP BY nb."model", nb."uid"
  ), last AS (
    SELECT DISTINCT ON ("model", "uid") * FROM numbered ORDER BY "model", "uid", "seq" DESC
  )
  INSERT INTO ${meta} AS mt ("model", "uid", "created_at", "updated_at", "deleted_at", "deleted_clock", "rev", "clocks")
    SELECT l."model", l."uid",
      CASE WHEN cur."created_at" IS NULL OR (cur."deleted_at" IS NOT NULL AND l."op" = 'upsert') THEN wall
           ELSE cur."created_at" END,
      CASE WHEN cur."updated_at" IS NULL OR cur."updated_at" < wall THEN wall
           ELSE cur."updated_at" + interval '1 millisecond' END,
      CASE WHEN l."op" = 'delete' THEN wall END,
      CASE WHEN l."op" = 'delete' THEN clk."clock" END,
      l."rev",
      CASE WHEN l."op" = 'delete' THEN coalesce(cur."clocks", '{}'::jsonb)
           ELSE (CASE WHEN cur."deleted_at" IS NOT NULL OR cur."clocks" IS NULL THEN '{}'::jsonb ELSE cur."clocks" END)
                || coalesce((SELECT jsonb_object_agg(k, clk."clock") FROM unnest(cols."changed") k), '{}'::jsonb)
      END
    FROM last l
    JOIN cols ON cols."model" = l."model" AND cols."uid" = l."uid"
    LEFT JOIN ${meta} cur ON cur."model" = l."model" AND cur."uid" = l."uid"
    CROSS JOIN LATERAL (
      SELECT CASE WHEN t.top IS NULL OR wall_hlc > t.top COLLATE "C"
                    OR t.top !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z-[0-9a-f]{4}-' THEN wall_hlc
             ELSE left(t.top, 24) || '-' ||
                  lpad(to_hex(least(('x' || lpad(substr(t.top, 26, 4), 8, '0'))::bit(32)::int + 1, 65535)), 4, '0') ||
                  '-sql'
             END AS "clock"
      FROM (SELECT max(vs.v COLLATE "C") AS top FROM (
              SELECT e.value AS v FROM jsonb_each_text(coalesce(cur."clocks", '{}'::jsonb)) e
              UNION ALL SELECT cur."deleted_clock") vs) t
    ) clk
    ON CONFLICT ("model", "uid") DO UPDATE SET
      "created_at" = excluded."created_at", "updated_at" = excluded."updated_at",
      "deleted_at" = excluded."deleted_at", "deleted_clock" = excluded."deleted_clock",
      "rev" = excluded."rev", "clocks" = excluded."clocks";
  DELETE FROM ${ident(n.staged)} WHERE "tx" = pg_current_xact_id();
  PERFORM pg_notify(${literal(n.channel)}, models);
  RETURN NULL;
END`
  const hash = fingerprint(body)
  return {
    name: n.commitFunction,
    hash,
    statement: `CREATE OR REPLACE FUNCTION ${ident(n.commitFunction)}() RETURNS trigger LANGUAGE plpgsql AS $tidesync$
${marker(hash)}${body}
$tidesync$`,
  }
}

/** The deferred trigger that runs the commit step once per capturing transaction. */
export function commitTrigger(tables: TidesyncTables): string[] {
  const n = captureNames(tables)
  return [
    `DROP TRIGGER IF EXISTS ${ident(n.commitTrigger)} ON ${ident(n.pendingTx)}`,
    `CREATE CONSTRAINT TRIGGER ${ident(n.commitTrigger)} AFTER INSERT ON ${ident(n.pendingTx)}
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${ident(n.commitFunction)}()`,
  ]
}

/** Types without an equality operator: compared through their text (json: as jsonb). */
const COMPARE_AS: Record<string, string> = { json: 'jsonb', xml: 'text', point: 'text', line: 'text' }

function distinct(column: PgColumn, left: string, right: string): string {
  const name = ident(column.name)
  const cast = COMPARE_AS[column.getSQLType().toLowerCase()]
  return cast
    ? `${left}.${name}::${cast} IS DISTINCT FROM ${right}.${name}::${cast}`
    : `${left}.${name} IS DISTINCT FROM ${right}.${name}`
}

/** The capture function and triggers of one model. @internal */
export function modelCapture(
  tables: TidesyncTables,
  model: ResolvedModel<unknown>,
): {
  fn: CaptureFunction
  triggers: string[]
} {
  const n = captureNames(tables)
  const staged = ident(n.staged)
  const table = qualifiedTable(model)
  const uid = ident(model.uid.name)
  const name = literal(model.name)
  // Columns whose change is an edit the clients see (a clock is recorded for it); counters have no clock.
  const synced = [...model.columns.entries()].filter(([key]) => key !== 'uid')
  const clocked = synced.filter(([key]) => !model.counters.has(key))
  const allKeys = `ARRAY[${clocked.map(([key]) => literal(key)).join(', ')}]::text[]`
  const changedKeys = `array_remove(ARRAY[${clocked
    .map(([key, column]) => `CASE WHEN ${distinct(column, 'o', 'n')} THEN ${literal(key)} END`)
    .join(', ')}]::text[], NULL)`
  const anyChange =
    synced.length > 0 ? synced.map(([, column]) => distinct(column, 'o', 'n')).join(' OR ') : 'false'
  const stageStatement = `INSERT INTO ${staged} ("model", "uid", "op", "before", "changed")`
  const fnName = `${tables.prefix}capture_${model.name}`
  const body = `
DECLARE
  mode text := coalesce(current_setting('${CAPTURE_SETTING}', true), '');
BEGIN
  IF mode = '${CAPTURE_OFF}' THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN
    ${stageStatement}
      SELECT ${name}, n.${uid}::text, 'upsert', NULL, ${allKeys} FROM capture_new n;
  ELSIF TG_OP = 'UPDATE' THEN
    ${stageStatement}
      SELECT ${name}, n.${uid}::text, 'upsert', to_jsonb(o),
             CASE WHEN mode = '${FLUSH_CAPTURE_MODE}' THEN '{}'::text[] ELSE ${changedKeys} END
        FROM capture_old o JOIN capture_new n ON o.${uid} = n.${uid}
       WHERE ${anyChange}
      UNION ALL
      SELECT ${name}, o.${uid}::text, 'delete', to_jsonb(o), '{}'::text[] FROM capture_old o
       WHERE NOT EXISTS (SELECT 1 FROM capture_new n WHERE n.${uid} = o.${uid})
      UNION ALL
      SELECT ${name}, n.${uid}::text, 'upsert', NULL, ${allKeys} FROM capture_new n
       WHERE NOT EXISTS (SELECT 1 FROM capture_old o WHERE o.${uid} = n.${uid});
  ELSIF TG_OP = 'DELETE' THEN
    ${stageStatement}
      SELECT ${name}, o.${uid}::text, 'delete', to_jsonb(o), '{}'::text[] FROM capture_old o;
  ELSE -- TRUNCATE (a BEFORE trigger): every record of the table is deleted.
    ${stageStatement}
      SELECT ${name}, o.${uid}::text, 'delete', to_jsonb(o), '{}'::text[] FROM ${table} o;
  END IF;
  INSERT INTO ${ident(n.pendingTx)} VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
  RETURN NULL;
END`
  const hash = fingerprint(`${body}\n${table}`)
  const trigger = (suffix: string) => ident(`${tables.prefix}capture_${suffix}`)
  const exec = `EXECUTE FUNCTION ${ident(fnName)}()`
  return {
    fn: {
      name: fnName,
      hash,
      statement: `CREATE OR REPLACE FUNCTION ${ident(fnName)}() RETURNS trigger LANGUAGE plpgsql AS $tidesync$
${marker(hash)}${body}
$tidesync$`,
    },
    triggers: [
      ...['insert', 'update', 'delete', 'truncate'].map(
        (e) => `DROP TRIGGER IF EXISTS ${trigger(e)} ON ${table}`,
      ),
      `CREATE TRIGGER ${trigger('insert')} AFTER INSERT ON ${table} REFERENCING NEW TABLE AS capture_new FOR EACH STATEMENT ${exec}`,
      `CREATE TRIGGER ${trigger('update')} AFTER UPDATE ON ${table} REFERENCING OLD TABLE AS capture_old NEW TABLE AS capture_new FOR EACH STATEMENT ${exec}`,
      `CREATE TRIGGER ${trigger('delete')} AFTER DELETE ON ${table} REFERENCING OLD TABLE AS capture_old FOR EACH STATEMENT ${exec}`,
      `CREATE TRIGGER ${trigger('truncate')} BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT ${exec}`,
    ],
  }
}

/** The call that turns capture off for the rest of the transaction (see `CAPTURE_OFF_STATEMENT`). */
export const CAPTURE_OFF_CALL = `set_config('${CAPTURE_SETTING}', '${CAPTURE_OFF}', true)`

/** Run first in each of tidesync's own write transactions: they log their changes themselves. */
export const CAPTURE_OFF_STATEMENT = `SELECT ${CAPTURE_OFF_CALL}`

/**
 * Every statement change capture needs for these models, in order, idempotent (`IF NOT EXISTS`,
 * `CREATE OR REPLACE`, `DROP TRIGGER IF EXISTS`): the shared staging tables and commit step,
 * then each model's function and triggers. For teams that keep SQL migrations (drizzle-kit
 * custom migrations, psql): run them after the metadata tables exist (`schemaStatements()`).
 */
export function captureSql(tables: TidesyncTables, models: Iterable<ResolvedModel<unknown>>): string[] {
  const statements = [
    ...sharedCaptureTables(tables),
    commitFunction(tables).statement,
    ...commitTrigger(tables),
  ]
  for (const model of models) {
    const { fn, triggers } = modelCapture(tables, model)
    statements.push(fn.statement, ...triggers)
  }
  return statements
}
