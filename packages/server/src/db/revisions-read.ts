import { eq, sql } from 'drizzle-orm'
import { rowsOf, type Store, type TidesyncTx } from './types.js'

/**
 * The newest committed revision of a model. Revisions of a model commit in order (see
 * write/revisions.ts), so everything up to it is visible: a safe checkpoint.
 */
export async function currentRevision(store: Store, model: string, tx?: TidesyncTx): Promise<number> {
  const { meta } = store.tables
  const [row] = await (tx ?? store.db)
    .select({ rev: sql<string | number | null>`max(${meta.rev})` })
    .from(meta)
    .where(eq(meta.model, model))
  return Number(row?.rev ?? 0)
}

/** Log entries counted one by one before `changesAfter` estimates the rest. */
const EXACT_UP_TO = 10_000

/**
 * How many log entries of a model follow `rev`, for progress (`remaining`, which PROTOCOL.md
 * allows to be approximate). Exact up to `exactUpTo`; past it, estimated from the first
 * `exactUpTo` entries' share of the revisions they span, scaled to the revisions from the first
 * of them to the model's newest (revisions are shared by all models, so a model's entries are
 * spread among them). Why not a plain count: a catch-up asks after every page, and counting all that follows
 * costs as much as what follows, so a long catch-up counted its log over and over (about 90 ms
 * a page with 500,000 entries to go on PostgreSQL). Zero only when nothing follows.
 */
export async function changesAfter(
  store: Store,
  model: string,
  rev: number,
  exactUpTo = EXACT_UP_TO,
): Promise<number> {
  const { changes } = store.tables
  type Bound = string | number | null
  const [row] = rowsOf<{ n: string | number; first: Bound; last: Bound; newest: Bound }>(
    await store.db.execute(sql`
      WITH w AS (
        SELECT ${changes.rev} AS rev FROM ${changes}
        WHERE ${changes.model} = ${model} AND ${changes.rev} > ${rev}
        ORDER BY ${changes.rev} LIMIT ${exactUpTo}
      )
      SELECT count(*) AS n, min(w.rev) AS first, max(w.rev) AS last,
        (SELECT max(${changes.rev}) FROM ${changes} WHERE ${changes.model} = ${model}) AS newest
      FROM w`),
  )
  const n = Number(row?.n ?? 0)
  if (n < exactUpTo) return n
  const first = Number(row!.first)
  const spanned = Number(row!.last) - first + 1
  const all = Number(row!.newest) - first + 1
  return Math.max(n, Math.round((n * all) / spanned))
}

/** The revision up to which the change log of a model was pruned (checkpoints below it expired). */
export async function prunedRevision(store: Store, model: string): Promise<number> {
  const { state } = store.tables
  const [row] = await store.db
    .select({ value: state.value })
    .from(state)
    .where(eq(state.key, `pruned:${model}`))
  return Number(row?.value ?? 0)
}
