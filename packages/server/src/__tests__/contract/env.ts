import { createIpc, type Ipc } from '@tidesync/ipc'
import { asc, sql } from 'drizzle-orm'
import { afterAll, beforeAll, beforeEach } from 'vitest'
import { noopLogger } from '../../logger.js'
import type { TidesyncOptions } from '../../options.js'
import { tidesyncTables } from '../../schema/metadata.js'
import { createTidesync, type Tidesync } from '../../tidesync.js'
import type { ModelConfig } from '../../types.js'
import type { TestDatabase } from '../fixtures/databases.js'
import { todos } from '../fixtures/schema.js'

/** A test user: `userId` set means the todos scope `{ ownerId: userId }` applies. */
export interface TestCtx extends Record<string, unknown> {
  userId?: string
}

export interface ContractEnv {
  database: TestDatabase
  ipc: Ipc
  /** A fresh server on the shared database (options override the defaults). */
  create(
    overrides?: Partial<TidesyncOptions<TestCtx>> & { todos?: Partial<ModelConfig<TestCtx>> },
  ): Tidesync<TestCtx>
  /** Everything stored, for "nothing was written" assertions. */
  snapshot(): Promise<unknown>
}

/** Sets up one database per suite (emptied before each test) and one memory IPC. */
export function useContractEnv(makeDatabase: () => Promise<TestDatabase>): () => ContractEnv {
  let env: ContractEnv | undefined
  beforeAll(async () => {
    const database = await makeDatabase()
    const ipc = await createIpc({ driver: 'memory' })
    env = {
      database,
      ipc,
      create(overrides = {}) {
        const { todos: todoOverrides, ...rest } = overrides
        return createTidesync<TestCtx>({
          db: database.db,
          ipc,
          logger: noopLogger,
          models: {
            todos: {
              table: todos,
              counters: ['likes'],
              scope: (ctx) => (ctx.userId ? { ownerId: ctx.userId } : undefined),
              ...todoOverrides,
            },
          },
          ...rest,
        })
      },
      async snapshot() {
        const db = database.db
        const { meta, changes, applied } = tidesyncTables
        return {
          todos: await db.select().from(todos).orderBy(asc(todos.uid)),
          meta: await db.select().from(meta).orderBy(asc(meta.uid)),
          changes: await db.select({ n: sql<number>`count(*)::int` }).from(changes),
          applied: await db.select({ n: sql<number>`count(*)::int` }).from(applied),
        }
      },
    }
  })
  beforeEach(async () => {
    await env?.database.reset()
  })
  afterAll(async () => {
    await env?.ipc.close()
    await env?.database.close()
  })
  return () => {
    if (!env) throw new Error('contract env not ready')
    return env
  }
}
