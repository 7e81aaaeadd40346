import type { Json } from '@tidesync/ipc'
import { sql } from 'drizzle-orm'
import { WriteBufferError } from '../errors.js'
import { type Executor, run, type StatementCounter } from './sql-util.js'

/**
 * The ledger: which flush batches a database has applied. A batch id is inserted in the same
 * transaction as the batch's writes, so after a crash between the commit and the clearing of
 * the in-flight state, the batch is recognised and cleared, never applied twice.
 */
export const LEDGER_TABLE = 'tidesync_write_buffer_batches'
export const WATERMARK_TABLE = 'tidesync_write_buffer_journal'
export const DEAD_LETTER_TABLE = 'tidesync_write_buffer_dead_letters'
/**
 * The receipt ledger: the receipts of increments given with `{ receipt }` that a database has
 * applied, recorded in the transaction that applied them (see `claimReceipts`).
 */
export const RECEIPT_TABLE = 'tidesync_write_buffer_receipts'

/** Unmatched rows of a flush, kept in the ledger row of its newest batch (durable with the commit). */
export interface OrphanSet {
  inc: Record<string, string>
  upd: Record<string, Json>
  att: Record<string, number>
}

export interface DeadLetter {
  batch: string
  kind: 'insert' | 'change' | 'stale'
  payload: Json
  error: string
}

/** Creates the ledger, receipt, watermark and dead-letter tables (idempotent, safe between processes). */
export async function ensureSchema(db: Executor): Promise<void> {
  await db.transaction(async (tx) => {
    // Concurrent CREATE TABLE IF NOT EXISTS can still collide on pg_type: serialise them.
    await run(tx, sql`select pg_advisory_xact_lock(7242519)`)
    await run(
      tx,
      sql.raw(`create table if not exists ${LEDGER_TABLE} (
        table_id text not null,
        id text not null,
        committed_at timestamptz not null default now(),
        orphans jsonb,
        primary key (table_id, id)
      )`),
    )
    await run(
      tx,
      sql.raw(
        `create index if not exists ${LEDGER_TABLE}_orphans on ${LEDGER_TABLE} (table_id) where orphans is not null`,
      ),
    )
    await run(
      tx,
      sql.raw(`create index if not exists ${LEDGER_TABLE}_committed on ${LEDGER_TABLE} (committed_at)`),
    )
    await run(
      tx,
      sql.raw(`create table if not exists ${RECEIPT_TABLE} (
        table_id text not null,
        id text not null,
        committed_at timestamptz not null default now(),
        primary key (table_id, id)
      )`),
    )
    await run(
      tx,
      sql.raw(`create index if not exists ${RECEIPT_TABLE}_committed on ${RECEIPT_TABLE} (committed_at)`),
    )
    await run(
      tx,
      sql.raw(`create table if not exists ${WATERMARK_TABLE} (
        instance text not null,
        table_id text not null,
        seq bigint not null,
        primary key (instance, table_id)
      )`),
    )
    await run(
      tx,
      sql.raw(`create table if not exists ${DEAD_LETTER_TABLE} (
        id bigserial primary key,
        table_id text not null,
        batch_id text not null,
        kind text not null,
        payload jsonb not null,
        error text not null,
        created_at timestamptz not null default now()
      )`),
    )
  })
}

/** Which of a table's batches `ids` are committed, with the orphans recorded on each. */
export async function lookupBatches(
  db: Executor,
  table: string,
  ids: string[],
): Promise<Map<string, OrphanSet | null>> {
  if (ids.length === 0) return new Map()
  const rows = await run<{ id: string; orphans: OrphanSet | string | null }>(
    db,
    sql`select id, orphans from ${sql.raw(LEDGER_TABLE)} where table_id = ${table} and id in (select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`,
  )
  return new Map(rows.map((r) => [r.id, parseOrphans(r.orphans)]))
}

/**
 * Records batch ids as applied. Fails (and so rolls the flush back) when any of them is
 * already recorded: someone else applied it, e.g. after this process lost its lock.
 */
export async function recordBatches(
  tx: Executor,
  table: string,
  ids: string[],
  counter: StatementCounter,
): Promise<void> {
  const inserted = await run<{ id: string }>(
    tx,
    sql`insert into ${sql.raw(LEDGER_TABLE)} (id, table_id) select x, ${table} from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) as x on conflict (table_id, id) do nothing returning id`,
    counter,
  )
  if (inserted.length !== ids.length) {
    throw new WriteBufferError(
      'WB_FLUSH_FAILED',
      `A batch of ${table} was already applied by another flush.`,
      {
        table,
      },
    )
  }
}

/**
 * Records receipts as applied and returns those that were not recorded yet: only their
 * increments may be applied in this transaction (the others were, by an earlier one).
 */
export async function claimReceipts(
  tx: Executor,
  table: string,
  receipts: Iterable<string>,
  counter?: StatementCounter,
): Promise<Set<string>> {
  const ids = [...receipts]
  if (ids.length === 0) return new Set()
  const inserted = await run<{ id: string }>(
    tx,
    sql`insert into ${sql.raw(RECEIPT_TABLE)} (id, table_id) select x, ${table} from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) as x on conflict (table_id, id) do nothing returning id`,
    counter,
  )
  return new Set(inserted.map((r) => r.id))
}

/** Which of `receipts` a table has applied. */
export async function appliedReceipts(db: Executor, table: string, receipts: string[]): Promise<Set<string>> {
  if (receipts.length === 0) return new Set()
  const rows = await run<{ id: string }>(
    db,
    sql`select id from ${sql.raw(RECEIPT_TABLE)} where table_id = ${table} and id in (select jsonb_array_elements_text(${JSON.stringify(receipts)}::jsonb))`,
  )
  return new Set(rows.map((r) => r.id))
}

export async function recordOrphans(
  tx: Executor,
  table: string,
  batch: string,
  orphans: OrphanSet,
  counter: StatementCounter,
): Promise<void> {
  await run(
    tx,
    sql`update ${sql.raw(LEDGER_TABLE)} set orphans = ${JSON.stringify(orphans)}::jsonb where table_id = ${table} and id = ${batch}`,
    counter,
  )
}

/** Orphan sets whose follow-up batch (`id~`) is not committed yet: to restore after the IPC store was lost. */
export async function openOrphans(db: Executor, table: string): Promise<Map<string, OrphanSet>> {
  const rows = await run<{ id: string; orphans: OrphanSet | string }>(
    db,
    sql`select b.id, b.orphans from ${sql.raw(LEDGER_TABLE)} b where b.table_id = ${table} and b.orphans is not null
      and not exists (select 1 from ${sql.raw(LEDGER_TABLE)} c where c.table_id = b.table_id and c.id = b.id || '~')`,
  )
  const out = new Map<string, OrphanSet>()
  for (const row of rows) {
    const orphans = parseOrphans(row.orphans)
    if (orphans) out.set(row.id, orphans)
  }
  return out
}

export async function recordWatermarks(
  tx: Executor,
  table: string,
  marks: Map<string, number>,
  counter: StatementCounter,
): Promise<void> {
  if (marks.size === 0) return
  const rows = [...marks].map(([instance, seq]) => ({ instance, seq }))
  await run(
    tx,
    sql`insert into ${sql.raw(WATERMARK_TABLE)} (instance, table_id, seq)
      select v.instance, ${table}, v.seq from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(instance text, seq bigint)
      on conflict (instance, table_id) do update set seq = greatest(${sql.raw(WATERMARK_TABLE)}.seq, excluded.seq)`,
    counter,
  )
}

/** Journal sequence numbers covered by committed batches, per table, for some instances. */
export async function readWatermarks(
  db: Executor,
  instances: string[],
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>()
  if (instances.length === 0) return out
  const rows = await run<{ instance: string; table_id: string; seq: string | number }>(
    db,
    sql`select instance, table_id, seq from ${sql.raw(WATERMARK_TABLE)} where instance in (select jsonb_array_elements_text(${JSON.stringify(instances)}::jsonb))`,
  )
  for (const row of rows) {
    const byTable = out.get(row.instance) ?? new Map<string, number>()
    byTable.set(row.table_id, Number(row.seq))
    out.set(row.instance, byTable)
  }
  return out
}

export async function recordDeadLetters(
  tx: Executor,
  table: string,
  letters: DeadLetter[],
  counter: StatementCounter,
): Promise<void> {
  if (letters.length === 0) return
  const rows = letters.map((l) => ({ batch_id: l.batch, kind: l.kind, payload: l.payload, error: l.error }))
  await run(
    tx,
    sql`insert into ${sql.raw(DEAD_LETTER_TABLE)} (table_id, batch_id, kind, payload, error)
      select ${table}, v.batch_id, v.kind, v.payload, v.error
      from jsonb_to_recordset(${JSON.stringify(rows, storableText)}::jsonb) as v(batch_id text, kind text, payload jsonb, error text)`,
    counter,
  )
}

/** Text jsonb refuses (a lone surrogate, NUL): often why the row was refused in the first place. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what is looked for
const UNSTORABLE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\u0000/g

/**
 * A JSON.stringify replacer that turns what jsonb cannot hold into U+FFFD, so a dead letter is
 * always recorded (a letter that cannot be would fail its flush, again and again).
 */
function storableText(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? value.replace(UNSTORABLE, '\ufffd') : value
}

/**
 * Forgets batches older than the retention (keeping orphan sets not yet followed up), and
 * receipts as old.
 */
export async function pruneLedger(tx: Executor, table: string, retentionMs: number): Promise<void> {
  await run(
    tx,
    sql`delete from ${sql.raw(RECEIPT_TABLE)} where table_id = ${table}
      and committed_at < now() - make_interval(secs => ${retentionMs / 1000})`,
  )
  await run(
    tx,
    sql`delete from ${sql.raw(LEDGER_TABLE)} b where b.table_id = ${table}
      and b.committed_at < now() - make_interval(secs => ${retentionMs / 1000})
      and (b.orphans is null or exists (select 1 from ${sql.raw(LEDGER_TABLE)} c where c.table_id = b.table_id and c.id = b.id || '~'))`,
  )
}

function parseOrphans(value: OrphanSet | string | null): OrphanSet | null {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? (JSON.parse(value) as OrphanSet) : value
}
