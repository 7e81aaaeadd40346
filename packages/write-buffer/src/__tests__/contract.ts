import { afterAll, beforeAll, describe } from 'vitest'
import { coreContract } from './contract-core.js'
import { deferredContract } from './contract-deferred.js'
import { durabilityContract } from './contract-durability.js'
import { flushContract } from './contract-flush.js'
import { insertContract } from './contract-inserts.js'
import { manyContract } from './contract-many.js'
import { receiptContract } from './contract-receipts.js'
import type { WriteBufferEnv } from './env.js'
import { useHarness } from './harness.js'

/**
 * The write-buffer contract: every guarantee, run unchanged on each database (PGlite, the
 * PostgreSQL server) and IPC driver (memory, Redis).
 */
export function runWriteBufferContract(name: string, makeEnv: () => Promise<WriteBufferEnv>): void {
  describe(`write-buffer contract: ${name}`, () => {
    let env: WriteBufferEnv | undefined
    beforeAll(async () => {
      env = await makeEnv()
    })
    afterAll(async () => {
      await env?.close()
    })
    const h = useHarness(() => {
      if (!env) throw new Error('environment not ready')
      return env
    })
    coreContract(h)
    flushContract(h)
    insertContract(h)
    receiptContract(h)
    durabilityContract(h)
    deferredContract(h)
    manyContract(h)
  })
}
