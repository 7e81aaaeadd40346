import { requireServer } from '@tidesync/test-env'
import { describe } from 'vitest'
import { runWriteBufferContract } from './contract.js'
import { pgliteEnv, postgresEnv } from './env.js'

const hasRedis = await requireServer('redis')
const hasPostgres = hasRedis && (await requireServer('postgres'))
describe.runIf(hasRedis)('Redis IPC', () => {
  runWriteBufferContract('PGlite + Redis IPC', () => pgliteEnv({ driver: 'redis' }))
})
describe.runIf(hasPostgres)('Redis IPC + PostgreSQL server', () => {
  runWriteBufferContract('PostgreSQL + Redis IPC', () => postgresEnv({ driver: 'redis' }))
})
