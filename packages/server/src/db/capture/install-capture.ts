import { sql } from 'drizzle-orm'
import { getTableConfig } from 'drizzle-orm/pg-core'
import { TidesyncConfigError } from '../../errors.js'
import type { ResolvedModel } from '../../model/resolve-models.js'
import { rowsOf, type Store } from '../types.js'
import {
  type CaptureFunction,
  captureNames,
  commitFunction,
  commitTrigger,
  literal,
  marker,
  modelCapture,
  qualifiedTable,
  sharedCaptureTables,
} from './capture-sql.js'

/**
 * Checks that each model's table has the columns its drizzle definition names: the capture
 * triggers read them, and a table that no longer matches the configuration would make every
 * write to it fail. Throws `TidesyncConfigError` naming the first missing table or column.
 */
export async function checkModelTables(
  store: Store,
  models: Iterable<ResolvedModel<unknown>>,
): Promise<void> {
  for (const model of models) {
    const { schema, name } = getTableConfig(model.table)
    const rows = rowsOf<{ column_name: string }>(
      await store.db.execute(sql`
        SELECT column_name FROM information_schema.columns
        WHERE table_name = ${name} AND table_schema = ${schema ?? sql`current_schema()`}`),
    )
    const where = `${schema ? `${schema}.` : ''}${name}`
    if (rows.length === 0) {
      throw new TidesyncConfigError(
        `model ${model.name}: table ${where} does not exist (create or migrate it first)`,
      )
    }
    const present = new Set(rows.map((r) => r.column_name))
    for (const [key, column] of model.columns) {
      if (!present.has(column.name)) {
        throw new TidesyncConfigError(
          `model ${model.name}: column ${column.name} (${key}) is not in table ${where}: the table no longer matches the model's drizzle definition; migrate the table or change the model`,
        )
      }
    }
  }
}

/** Which of these functions are missing or hold another version (by their fingerprint). */
async function outdated(store: Store, functions: CaptureFunction[]): Promise<Set<string>> {
  const names = functions.map((f) => literal(f.name)).join(', ')
  const rows = rowsOf<{ proname: string; prosrc: string }>(
    await store.db.execute(
      sql.raw(`SELECT proname, prosrc FROM pg_proc
        WHERE proname IN (${names}) AND pronamespace = current_schema()::regnamespace`),
    ),
  )
  const installed = new Map(rows.map((r) => [r.proname, r.prosrc]))
  return new Set(functions.filter((f) => !installed.get(f.name)?.includes(marker(f.hash))).map((f) => f.name))
}

/**
 * Sets change capture up for these models: checks their tables, then creates what is missing
 * or out of date (shared staging tables and commit step, each model's function and triggers).
 * Idempotent and cheap when everything is in place (one catalog lookup, no DDL, no table lock).
 * Safe with several servers starting at once: changes are made under a transaction-scoped
 * advisory lock, after looking again, each object in its own short transaction (a trigger's DDL
 * locks its table briefly).
 */
export async function setupCapture(store: Store, models: Iterable<ResolvedModel<unknown>>): Promise<void> {
  const list = [...models]
  await checkModelTables(store, list)
  const tables = store.tables
  const shared = commitFunction(tables)
  const perModel = list.map((model) => ({ model, ...modelCapture(tables, model) }))
  const all = [shared, ...perModel.map((m) => m.fn)]
  const missingTriggers = await modelsWithoutTriggers(store, list)
  if (
    (await outdated(store, all)).size === 0 &&
    missingTriggers.size === 0 &&
    (await sharedTablesExist(store))
  ) {
    return
  }
  const lockKey = `${tables.prefix}capture_setup`
  const inLock = async (statements: string[]) =>
    store.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`)
      for (const statement of statements) await tx.execute(sql.raw(statement))
    })
  // Shared objects: one lookup of what exists, then each creation in its own short transaction.
  if (!(await sharedTablesExist(store))) {
    for (const statement of sharedCaptureTables(tables)) await inLock([statement])
  }
  const stale = await outdated(store, all)
  if (stale.has(shared.name) || missingTriggers.has(COMMIT)) {
    await inLock([shared.statement, ...commitTrigger(tables)])
  }
  for (const { model, fn, triggers } of perModel) {
    // A table dropped and created again (a migration, a reset) lost its triggers, not the function.
    if (stale.has(fn.name) || missingTriggers.has(model.name)) await inLock([fn.statement, ...triggers])
  }
}

/** The key `modelsWithoutTriggers` uses for the shared commit trigger. */
const COMMIT = '\u0000commit'

/** The models whose table lacks one of its capture triggers (and `COMMIT` for the shared one). */
async function modelsWithoutTriggers(store: Store, models: ResolvedModel<unknown>[]): Promise<Set<string>> {
  const p = store.tables.prefix
  const n = captureNames(store.tables)
  const events = ['insert', 'update', 'delete', 'truncate'].map((e) => literal(`${p}capture_${e}`))
  const count = (relation: string, names: string[]) =>
    `(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(${literal(relation)}) AND tgname IN (${names.join(', ')}))::int`
  const checks = [
    `${count(`"${n.pendingTx}"`, [literal(n.commitTrigger)])} AS "c"`,
    ...models.map((model, i) => `${count(qualifiedTable(model), events)} AS "m${i}"`),
  ]
  const row =
    rowsOf<Record<string, number>>(await store.db.execute(sql.raw(`SELECT ${checks.join(', ')}`)))[0] ?? {}
  const missing = new Set<string>()
  if (Number(row.c) !== 1) missing.add(COMMIT)
  models.forEach((model, i) => {
    if (Number(row[`m${i}`]) !== events.length) missing.add(model.name)
  })
  return missing
}

async function sharedTablesExist(store: Store): Promise<boolean> {
  const n = captureNames(store.tables)
  const row = rowsOf<Record<string, unknown>>(
    await store.db.execute(sql`
      SELECT to_regclass(${`"${n.staged}_by_tx"`}) IS NOT NULL AS staged,
             to_regclass(${`"${n.pendingTx}"`}) IS NOT NULL AS pending`),
  )[0]
  return Boolean(row && Object.values(row).every((v) => v === true || v === 't'))
}
