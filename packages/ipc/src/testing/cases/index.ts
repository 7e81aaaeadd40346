import { counterCases } from './counters.js'
import { expiryCases, takeAndClearCases } from './expiry.js'
import { hashCases } from './hashes.js'
import type { ContractCase } from './helpers.js'
import { checkpointCases, lifecycleCases } from './lifecycle.js'
import { listCases, setCases } from './lists-sets.js'
import { lockCases } from './locks.js'
import { pubsubCases } from './pubsub.js'
import { stringCases } from './strings.js'
import { validationCases } from './validation.js'

export type { CaseContext, ContractCase } from './helpers.js'

/** Every single-process case of the IPC contract, in a stable order (names are unique). */
export const contractCases: readonly ContractCase[] = [
  ...stringCases,
  ...counterCases,
  ...hashCases,
  ...listCases,
  ...setCases,
  ...expiryCases,
  ...takeAndClearCases,
  ...checkpointCases,
  ...lockCases,
  ...pubsubCases,
  ...validationCases,
  ...lifecycleCases,
]
