import type { LiveChange } from '@tidesync/protocol'
import type { Core } from '../core.js'

/**
 * Publishes committed changes, in order, one message per model and run (see `distinctRuns`):
 * a commit's changes (write/commit.ts) and the capture reader's pages alike.
 */
export async function publishChanges(
  core: Core,
  changes: Array<{ model: string; change: LiveChange }>,
): Promise<void> {
  for (const run of distinctRuns(changes)) {
    const byModel = new Map<string, LiveChange[]>()
    for (const { model, change } of run) {
      const list = byModel.get(model)
      if (list) list.push(change)
      else byModel.set(model, [change])
    }
    for (const [model, list] of byModel) await core.publish(model, list)
  }
}

/**
 * Splits changes, in order, into runs that name each record once: a live push lists upserts
 * and deletes apart, so two changes of one record in one message would lose their order (a
 * delete and a re-create). Separate messages arrive in order, as separate commits would.
 */
function distinctRuns<T extends { model: string; change: LiveChange }>(changes: T[]): T[][] {
  const runs: T[][] = []
  let run: T[] = []
  let seen = new Set<string>()
  for (const change of changes) {
    const key = `${change.model}:${change.change.uid}`
    if (seen.has(key)) {
      runs.push(run)
      run = []
      seen = new Set()
    }
    seen.add(key)
    run.push(change)
  }
  if (run.length > 0) runs.push(run)
  return runs
}
