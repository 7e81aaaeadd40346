import { runWriteBufferContract } from './contract.js'
import { pgliteEnv } from './env.js'

/**
 * The contract on the cluster driver, primary side (this process is the primary and owns the
 * store). Real forked workers on the same driver, with the PostgreSQL server: cluster.test.ts.
 */
runWriteBufferContract('PGlite + cluster IPC (primary)', () => pgliteEnv({ driver: 'cluster' }))
