import { and, count, isNull, or, type SQL, sql } from 'drizzle-orm'
import type { Core } from '../core.js'
import { currentRevision } from '../db/revisions-read.js'
import { isTrue, matchesSql, metaJoin, uidIn } from '../db/sql.js'
import { rowsOf, type TidesyncTx } from '../db/types.js'
import { type MetaRow, rowToWire } from '../model/record.js'
import type { ResolvedModel } from '../model/resolve-models.js'
import type { Filter } from '../model/scope.js'
import type { ParsedClientMeta } from '../validation/records.js'

/** A record matching where+scope that needs a decision (see `readReconcileState`). */
export interface MatchingRow {
  row: Record<string, unknown>
  /** Null when the row was written outside tidesync (repaired by the caller). */
  meta: MetaRow | null
}

/** What the server knows of a client uid that does not match where+scope. */
export interface OutsideState {
  uid: string
  meta: MetaRow | null
  rowExists: boolean
  /** Inside the caller's scope (a client tombstone may then delete it). */
  inScope: boolean
}

export interface ReconcileState {
  /** The newest revision in the snapshot read: the next delta pull starts after it. */
  checkpoint: number
  /**
   * Matching records the client lacks, holds with another `updated_at`, holds as a tombstone,
   * or that have no metadata. Matching records the client holds as they are are not read.
   */
  rows: MatchingRow[]
  /** Every client uid that does not match where+scope. */
  outside: OutsideState[]
}

/**
 * PostgreSQL array literals, so that the client's dictionary is three parameters whatever its
 * size (and `unnest` reads it faster than JSON).
 */
function textArray(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`
}

function clientTable(core: Core, clientMeta: Map<string, ParsedClientMeta>): SQL {
  const uids: string[] = []
  const times: number[] = []
  const deleted: string[] = []
  for (const [uid, meta] of clientMeta) {
    uids.push(uid)
    // The same clamping as every client clock: a clock far ahead does not win for ever.
    times.push(core.hlc.clampDate(meta.updatedAt).getTime())
    deleted.push(meta.deletedAt ? 't' : 'f')
  }
  return sql`unnest(${textArray(uids)}::text[], ${`{${times.join(',')}}`}::float8[], ${`{${deleted.join(',')}}`}::bool[]) AS c(uid, updated_ms, deleted)`
}

/**
 * Reads what a full reconcile decides on, in one snapshot (a read-only repeatable-read
 * transaction), without reading the records the client already holds as they are: the client's
 * dictionary goes to the database (`unnest` of arrays) and is compared there.
 *
 * 1. the checkpoint (newest revision);
 * 2. how many records match where+scope;
 * 3. the matching records that need a decision (see `ReconcileState.rows`), and every record
 *    with pending write-buffer state (its filter is judged on the overlaid values);
 * 4. only when (2) and (3) leave client uids unaccounted for: those uids' metadata and whether
 *    their rows exist and are in scope (client-only records, evictions, server tombstones).
 *
 * So the in-sync case transfers nothing per record, and the cost is one pass in the database.
 */
export async function readReconcileState(
  core: Core,
  model: ResolvedModel<unknown>,
  filter: Filter,
  clientMeta: Map<string, ParsedClientMeta>,
): Promise<ReconcileState> {
  const { meta } = core.tables
  const pending = filter.sql ? await core.pending.pendingUids(model) : []
  const client = clientTable(core, clientMeta)
  const serverMs = sql`round(extract(epoch FROM ${meta.updatedAt}) * 1000)::float8`
  const read = await core.db.transaction(
    async (tx) => {
      // JIT compilation of this one-off query cost more than running it (0.5 s at 100,000 records).
      await tx.execute(sql`SELECT set_config('jit', 'off', true)`)
      const checkpoint = await currentRevision(core, model.name, tx)
      const [counted] =
        clientMeta.size > 0 ? await tx.select({ n: count() }).from(model.table).where(filter.sql) : [{ n: 0 }]
      const rows = (await tx
        .select({
          row: model.table,
          meta,
          matched: matchesSql(filter.sql),
          clientHas: sql<boolean>`c.uid IS NOT NULL`,
        })
        .from(model.table)
        .leftJoin(meta, metaJoin(core.tables, model))
        // The cast is on the client's side: the planner then knows the uid column's statistics.
        .leftJoin(client, sql`${model.uid} = c.uid::${sql.raw(model.uid.getSQLType())}`)
        .where(
          and(
            pending.length > 0 ? or(filter.sql, uidIn(model, pending)) : filter.sql,
            or(
              sql`c.uid IS NULL`,
              sql`c.deleted`,
              isNull(meta.uid),
              sql`c.updated_ms <> ${serverMs}`,
              pending.length > 0 ? uidIn(model, pending) : undefined,
            ),
          ),
        )) as Array<{
        row: Record<string, unknown>
        meta: MetaRow | null
        matched: boolean | string
        clientHas: boolean | string
      }>
      // Matching records not read are held by the client as they are; every client uid beyond
      // those and the ones read is outside where+scope.
      const matchedRead = rows.filter((r) => isTrue(r.matched)).length
      const clientRead = rows.filter((r) => isTrue(r.clientHas)).length
      const accounted = Number(counted?.n ?? 0) - matchedRead + clientRead
      const outside =
        clientMeta.size > accounted ? await readOutside(core, tx, model, filter, client, pending) : []
      return { checkpoint, rows, outside }
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  )

  // Pending write-buffer values are read outside the transaction (the buffer may read the
  // database), then the filter is judged again on the rows they changed.
  const changed = await core.pending.overlay(
    model,
    read.rows.map((r) => r.row),
  )
  const rows: MatchingRow[] = []
  const outside = new Map(read.outside.map((o) => [o.uid, o]))
  for (const { row, meta: rowMeta, matched, clientHas } of read.rows) {
    const uid = String(row.uid)
    const record = changed.has(row) ? rowToWire(model, row) : undefined
    if (record ? filter.matches(record) : isTrue(matched)) {
      rows.push({ row, meta: rowMeta })
      outside.delete(uid)
    } else if (isTrue(clientHas)) {
      outside.set(uid, {
        uid,
        meta: rowMeta,
        rowExists: true,
        inScope: record ? filter.matchesScope(record) : true,
      })
    }
  }
  return { checkpoint: read.checkpoint, rows, outside: [...outside.values()] }
}

/** The client uids that do not match where+scope (and those with pending state), in one query. */
async function readOutside(
  core: Core,
  tx: TidesyncTx,
  model: ResolvedModel<unknown>,
  filter: Filter,
  client: SQL,
  pending: string[],
): Promise<OutsideState[]> {
  const { meta } = core.tables
  const uidType = sql.raw(model.uid.getSQLType())
  const alias = sql.identifier(model.tableName)
  const rowExists = sql`${alias}.${sql.identifier(model.uid.name)} IS NOT NULL`
  const inScope = filter.scopeSql ? sql`coalesce((${filter.scopeSql}), false)` : sql`true`
  const result = await tx.execute(sql`
    SELECT c.uid AS "uid", ${rowExists} AS "rowExists", ${inScope} AS "inScope",
      (extract(epoch FROM m.created_at) * 1000)::float8 AS "createdAt",
      (extract(epoch FROM m.updated_at) * 1000)::float8 AS "updatedAt",
      (extract(epoch FROM m.deleted_at) * 1000)::float8 AS "deletedAt",
      m.rev AS "rev", m.uid AS "metaUid"
    FROM ${client}
    LEFT JOIN ${meta} m ON m.model = ${model.name} AND m.uid = c.uid
    LEFT JOIN ${model.table} ${alias} ON ${model.uid} = c.uid::${uidType}
    WHERE NOT ${rowExists} OR NOT ${matchesSql(filter.sql)}${
      pending.length > 0
        ? sql` OR c.uid IN (SELECT jsonb_array_elements_text(${JSON.stringify(pending)}::jsonb))`
        : sql``
    }`)
  return rowsOf<Record<string, unknown>>(result).map((r) => ({
    uid: String(r.uid),
    rowExists: isTrue(r.rowExists),
    inScope: isTrue(r.inScope),
    meta:
      r.metaUid == null
        ? null
        : {
            model: model.name,
            uid: String(r.uid),
            createdAt: new Date(Number(r.createdAt)),
            updatedAt: new Date(Number(r.updatedAt)),
            deletedAt: r.deletedAt == null ? null : new Date(Number(r.deletedAt)),
            deletedClock: null,
            rev: Number(r.rev),
            clocks: {},
          },
  }))
}
