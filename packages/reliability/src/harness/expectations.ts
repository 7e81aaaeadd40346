import { expect } from 'vitest'
import type { SoakReport } from './soak.js'

/** RELIABILITY_STRICT=1: discrepancies explained by a known bug fail the test too. */
export const strict = process.env.RELIABILITY_STRICT === '1'

/**
 * The end-state assertions every soak and fault test makes: no write failed locally, no
 * unexplained discrepancy, counters exact (up to what a named known issue lost, which is printed;
 * in strict mode that fails as well).
 */
export function expectConverged(report: SoakReport): void {
  const v = report.verify
  if (v.knownIssues.length > 0)
    console.warn(`KNOWN ISSUES HIT (${v.knownIssues.length}):\n  ${v.knownIssues.join('\n  ')}`)
  expect(report.workloadFailures).toEqual([])
  expect(v.problems).toEqual([])
  expect(v.rejected).toBe(0)
  expect(v.likesInDatabase).toBe(v.likesExpected - v.likesLostToKnownIssues)
  if (strict) expect(v.knownIssues).toEqual([])
}
