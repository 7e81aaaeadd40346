import { sql } from 'drizzle-orm'
import { lockRevisions } from '../db/locks.js'
import { rowsOf, type Store, type TidesyncTx } from '../db/types.js'
import type { StagedChange } from './staged-change.js'

/**
 * Gives each written change a revision and stores its metadata and change-log entry.
 *
 * Why a lock: sequence numbers are handed out when asked, not when transactions commit, so
 * revision 11 could commit before 10 and a client that pulled up to 11 would never see 10. The
 * per-model advisory lock taken here is held until commit, so revisions of one model commit in
 * order: whatever a reader sees up to revision N is complete. It is taken last, after all the
 * transaction's work, so it is held only for these few statements.
 *
 * One record may be staged more than once (a push batch holding a create and then an update of
 * it): each change gets its own revision and change-log entry, in the order staged, and the
 * metadata row keeps the last.
 */
export async function writeRevisions(store: Store, tx: TidesyncTx, staged: StagedChange[]): Promise<void> {
  const written = staged.filter((change) => change.status === 'written')
  if (written.length === 0) return
  const { revSeq } = store.tables
  const models = [...new Set(written.map((c) => c.model.name))].sort()
  for (const model of models) await lockRevisions(tx, model)
  const seqName = revSeq.seqName ?? `${store.tables.prefix}rev_seq`
  const result = await tx.execute(
    sql`SELECT nextval(${seqName}::regclass)::bigint AS rev FROM generate_series(1, ${written.length}::int)`,
  )
  const revs = rowsOf<{ rev: string | number }>(result)
    .map((r) => Number(r.rev))
    .sort((a, b) => a - b)
  written.forEach((change, i) => {
    change.after.meta = { ...change.after.meta, rev: revs[i]! }
  })
  for (let start = 0; start < written.length; start += CHUNK) {
    await writeChunk(store, tx, written.slice(start, start + CHUNK))
  }
}

/** Rows per statement (PostgreSQL takes at most 65535 parameters). */
const CHUNK = 1000

async function writeChunk(store: Store, tx: TidesyncTx, written: StagedChange[]): Promise<void> {
  const { meta, changes } = store.tables
  // One row per record (an upsert may not touch a row twice): the last change of each wins.
  const last = new Map<string, StagedChange>()
  for (const c of written) last.set(`${c.model.name}:${c.uid}`, c)
  await tx
    .insert(meta)
    .values([...last.values()].map((c) => ({ ...c.after.meta, model: c.model.name, uid: c.uid })))
    .onConflictDoUpdate({
      target: [meta.model, meta.uid],
      set: {
        createdAt: sql`excluded.created_at`,
        updatedAt: sql`excluded.updated_at`,
        deletedAt: sql`excluded.deleted_at`,
        deletedClock: sql`excluded.deleted_clock`,
        rev: sql`excluded.rev`,
        clocks: sql`excluded.clocks`,
      },
    })
  await tx.insert(changes).values(
    written.map((c) => ({
      rev: c.after.meta.rev,
      model: c.model.name,
      uid: c.uid,
      op: c.op,
      before: c.before.json ?? null,
    })),
  )
}
