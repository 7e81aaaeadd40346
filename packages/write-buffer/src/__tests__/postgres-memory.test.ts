import { requireServer } from '@tidesync/test-env'
import { describe } from 'vitest'
import { runWriteBufferContract } from './contract.js'
import { postgresEnv } from './env.js'

const hasPostgres = await requireServer('postgres')
describe.runIf(hasPostgres)('PostgreSQL server', () => {
  runWriteBufferContract('PostgreSQL + memory IPC', () => postgresEnv({ driver: 'memory' }))
})
