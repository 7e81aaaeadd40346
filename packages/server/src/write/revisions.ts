import { sql } from 'drizzle-orm'
import { REVISION_LOCK_CLASS } from '../db/locks.js'
import { rowsOf, type Store, type TidesyncTx } from '../db/types.js'
import type { StagedChange } from './staged-change.js'

/**
 * Gives each written change a revision and stores its metadata and change-log entry.
 *
 * Why a lock: sequence numbers are handed out when asked, not when transactions commit, so
 * revision 11 could commit before 10 and a client that pulled up to 11 would never see 10. The
 * per-model advisory lock taken here is held until commit, so revisions of one model commit in
 * order: whatever a reader sees up to revision N is complete. It is taken last, after all the
 * transaction's work, so it is held only for this statement and the commit.
 *
 * Why one statement: every other transaction that writes the model waits for the lock, so each
 * round trip made while holding it is paid by all of them (under load, a round trip is mostly
 * the wait for the server process's next turn, not the database's work). The lock, the
 * revisions, the metadata and the change log are one statement (`revisionsStatement`), so
 * the lock is held for one round trip and the commit.
 *
 * One record may be staged more than once (a push batch holding a create and then an update of
 * it): each change gets its own revision and change-log entry, in the order staged, and the
 * metadata row keeps the last.
 */
export async function writeRevisions(store: Store, tx: TidesyncTx, staged: StagedChange[]): Promise<void> {
  const written = staged.filter((change) => change.status === 'written')
  if (written.length === 0) return
  const result = await tx.execute(revisionsStatement(store, written))
  const revs = rowsOf<{ rev: string | number }>(result).map((r) => Number(r.rev))
  if (revs.length !== written.length) {
    throw new Error(`revisions: ${revs.length} revision(s) for ${written.length} change(s)`)
  }
  written.forEach((change, i) => {
    change.after.meta = { ...change.after.meta, rev: revs[i]! }
  })
}

/**
 * One statement: takes the revision lock of each model (sorted), then (only then: the
 * sequence is read behind a one-time filter on the lock) draws one revision per change, in
 * order, upserts the metadata of each record's last change and inserts every change-log entry;
 * returns the revisions in the order of `written`.
 */
function revisionsStatement(store: Store, written: StagedChange[]) {
  const { meta, changes, revSeq, prefix } = store.tables
  const seqName = revSeq.seqName ?? `${prefix}rev_seq`
  const models = [...new Set(written.map((c) => c.model.name))].sort()
  // One metadata row per record (an upsert may not touch a row twice): the last change of each.
  const last = new Map<string, number>()
  written.forEach((c, i) => {
    last.set(`${c.model.name}\u0000${c.uid}`, i)
  })
  const rows = written.map((c, i) => {
    const m = c.after.meta
    return {
      i: i + 1,
      model: c.model.name,
      uid: c.uid,
      op: c.op,
      before: c.before.json ?? null,
      created_at: m.createdAt,
      updated_at: m.updatedAt,
      deleted_at: m.deletedAt,
      deleted_clock: m.deletedClock,
      clocks: m.clocks,
      last: last.get(`${c.model.name}\u0000${c.uid}`) === i,
    }
  })
  const col = (column: { name: string }) => sql.identifier(column.name)
  return sql`
    WITH locked AS MATERIALIZED (
      SELECT count(pg_advisory_xact_lock(${REVISION_LOCK_CLASS}::int, hashtext(m))) AS n
      FROM (SELECT m FROM jsonb_array_elements_text(${JSON.stringify(models)}::jsonb) WITH ORDINALITY AS t(m, o)
            ORDER BY o) AS ordered
    ),
    drawn AS MATERIALIZED (
      SELECT nextval(${seqName}::regclass)::bigint AS rev
      FROM generate_series(1, ${written.length}::int)
      WHERE (SELECT n FROM locked) >= 0
    ),
    numbered AS (SELECT rev, row_number() OVER (ORDER BY rev) AS i FROM drawn),
    input AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
        i bigint, model text, uid text, op text, before jsonb, created_at timestamptz,
        updated_at timestamptz, deleted_at timestamptz, deleted_clock text, clocks jsonb, last boolean)
    ),
    upserted AS (
      INSERT INTO ${meta} (${col(meta.model)}, ${col(meta.uid)}, ${col(meta.createdAt)}, ${col(meta.updatedAt)},
        ${col(meta.deletedAt)}, ${col(meta.deletedClock)}, ${col(meta.rev)}, ${col(meta.clocks)})
      SELECT input.model, input.uid, input.created_at, input.updated_at, input.deleted_at, input.deleted_clock,
        numbered.rev, input.clocks
      FROM input JOIN numbered ON numbered.i = input.i
      WHERE input.last
      ON CONFLICT (${col(meta.model)}, ${col(meta.uid)}) DO UPDATE SET
        ${col(meta.createdAt)} = excluded.${col(meta.createdAt)},
        ${col(meta.updatedAt)} = excluded.${col(meta.updatedAt)},
        ${col(meta.deletedAt)} = excluded.${col(meta.deletedAt)},
        ${col(meta.deletedClock)} = excluded.${col(meta.deletedClock)},
        ${col(meta.rev)} = excluded.${col(meta.rev)},
        ${col(meta.clocks)} = excluded.${col(meta.clocks)}
    ),
    logged AS (
      INSERT INTO ${changes} (${col(changes.rev)}, ${col(changes.model)}, ${col(changes.uid)}, ${col(changes.op)},
        ${col(changes.before)})
      SELECT numbered.rev, input.model, input.uid, input.op, input.before
      FROM input JOIN numbered ON numbered.i = input.i
    )
    SELECT rev FROM numbered ORDER BY i`
}
