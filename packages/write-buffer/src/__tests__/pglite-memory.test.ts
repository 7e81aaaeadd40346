import { runWriteBufferContract } from './contract.js'
import { pgliteEnv } from './env.js'

runWriteBufferContract('PGlite + memory IPC', () => pgliteEnv({ driver: 'memory' }))
