import type { Mode } from './page.js'

/**
 * The cases by the names the results use, and the page mode each runs (`page.ts` says what each
 * one times). The first four are the benchmark; `tidesyncWorker`, `dexieSplit` and
 * `dexiePacked` are experiments for changes the client could make, run when asked for.
 */
export const CASE_MODES = {
  tidesync: 'tidesync',
  tidesyncQuery: 'tidesyncQuery',
  dexieBulkPut: 'dexie',
  rawPull: 'pull',
  tidesyncWorker: 'tidesyncWorker',
  dexieSplit: 'dexieSplit',
  dexiePacked: 'dexiePacked',
} as const satisfies Record<string, Mode>

export type CaseName = keyof typeof CASE_MODES

/** Case names from a comma-separated list (an env variable), checked. */
export function parseCases(list: string): CaseName[] {
  const names = list.split(',').filter(Boolean)
  for (const name of names)
    if (!(name in CASE_MODES))
      throw new Error(`unknown case ${name}: one of ${Object.keys(CASE_MODES).join(', ')}`)
  return names as CaseName[]
}
