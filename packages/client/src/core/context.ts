import type { HybridClock } from '@tidesync/protocol'
import type { LocalDb } from './db/database.js'
import type { ModelInfo } from './schema/model.js'
import type { Clock, Logger, Timers } from './types.js'

/** What the client's modules share. @internal */
export interface ClientContext {
  readonly db: LocalDb
  readonly models: readonly ModelInfo[]
  readonly hlc: HybridClock
  readonly clock: Clock
  readonly timers: Timers
  readonly logger: Logger
  /** The stable id of the local database (shared by every tab). */
  readonly clientId: string
  /** Records per IndexedDB transaction when applying server data. */
  readonly chunkSize: number
}

/** Finds a model by its schema key or its drizzle table (how the app names it). @internal */
export function findModel(models: readonly ModelInfo[], ref: unknown): ModelInfo | undefined {
  return models.find((model) => model.key === ref || model.table === ref)
}

/** Finds a model by the name the server uses for it (what a push from the server names). @internal */
export function modelByWireName(models: readonly ModelInfo[], name: string): ModelInfo | undefined {
  return models.find((model) => model.wireName === name)
}

/** The state key under which the last HLC is shared between tabs. @internal */
export const HLC_STATE_KEY = 'hlc'

/**
 * Makes the next HLC inside a write transaction that includes `_state`: it first moves past the
 * clock stored by any tab, so clocks stay monotonic across tabs and reloads. @internal
 */
export async function nextClock(ctx: ClientContext): Promise<string> {
  const stored = await ctx.db.state.get(HLC_STATE_KEY)
  if (typeof stored?.value === 'string') ctx.hlc.observe(stored.value)
  const clock = ctx.hlc.now()
  await ctx.db.state.put({ key: HLC_STATE_KEY, value: clock })
  return clock
}
