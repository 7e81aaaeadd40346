import { and, count, eq, gt, sql } from 'drizzle-orm'
import type { Store, TidesyncTx } from './types.js'

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

/** How many log entries of a model follow `rev` (for progress). */
export async function changesAfter(store: Store, model: string, rev: number): Promise<number> {
  const { changes } = store.tables
  const [row] = await store.db
    .select({ n: count() })
    .from(changes)
    .where(and(eq(changes.model, model), gt(changes.rev, rev)))
  return Number(row?.n ?? 0)
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
