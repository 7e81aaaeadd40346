import { expect } from 'vitest'
import type { SoakReport } from './soak.js'

/**
 * The end-state assertions every soak and fault test makes: no write failed locally, no
 * discrepancy between the clients, the database and the acknowledgements, counters exact
 * (nothing acknowledged lost, nothing applied twice).
 */
export function expectConverged(report: SoakReport): void {
  const v = report.verify
  expect(report.workloadFailures).toEqual([])
  expect(v.problems).toEqual([])
  expect(v.rejected).toBe(0)
  expect(v.likesInDatabase).toBe(v.likesExpected)
}
