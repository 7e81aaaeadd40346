import { type SQL, sql } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import type { Core } from '../../core.js'
import { rowsOf } from '../../db/types.js'
import type { ResolvedModel } from '../../model/resolve-models.js'
import { buildFilter } from '../../model/scope.js'
import { recordsStatement } from '../../read/records.js'
import type { ContractEnv } from './env.js'

/**
 * The plan of `statement` with PostgreSQL told to plan every statement it can in parallel
 * (`debug_parallel_query`, named `force_parallel_mode` before PostgreSQL 16), as text.
 */
async function forcedParallelPlan(env: ContractEnv, statement: SQL): Promise<string> {
  return env.database.db.transaction(async (tx) => {
    const [{ version }] = rowsOf<{ version: string }>(
      await tx.execute(sql`SELECT current_setting('server_version_num') AS version`),
    ) as [{ version: string }]
    const setting = Number(version) >= 160000 ? 'debug_parallel_query' : 'force_parallel_mode'
    await tx.execute(sql`SELECT set_config(${setting}, 'on', true)`)
    const rows = rowsOf<Record<string, string>>(await tx.execute(sql`EXPLAIN ${statement}`))
    return rows.map((row) => Object.values(row)[0]).join('\n')
  })
}

/** PostgreSQL only: PGlite, one process, never plans in parallel. */
export function snapshotPlanContract(env: () => ContractEnv): void {
  describe('snapshot page reads', () => {
    it('are never planned in parallel, even where PostgreSQL is told to plan every statement so', async () => {
      const t = env().create()
      const core = t.core as Core
      const model = core.models.get('todos') as ResolvedModel<unknown>
      const filter = buildFilter(model, { ownerId: 'u1' }, {})
      const page = recordsStatement(core, model, filter, { where: filter.sql, limit: 1001 })
      // The setting works here: a plain read of the same table gets a parallel plan.
      expect(await forcedParallelPlan(env(), sql`SELECT * FROM ${model.table} LIMIT 1001`)).toContain(
        'Gather',
      )
      expect(await forcedParallelPlan(env(), page)).not.toContain('Gather')
    })
  })
}
