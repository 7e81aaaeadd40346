import { requireServer } from '@tidesync/test-env'
import { describe } from 'vitest'
import { captureContract } from './contract/capture.contract.js'
import { captureConcurrencyContract } from './contract/capture-concurrency.contract.js'
import { useCaptureEnv } from './contract/capture-env.js'
import { captureMergeContract } from './contract/capture-merge.contract.js'
import { captureReaderContract } from './contract/capture-reader.contract.js'
import { captureSetupContract } from './contract/capture-setup.contract.js'
import { createPgliteDatabase, createPostgresDatabase } from './fixtures/databases.js'

const hasPostgres = await requireServer('postgres')
const hasRedis = await requireServer('redis')

describe('change capture on PGlite', () => {
  const env = useCaptureEnv(createPgliteDatabase)
  captureContract(env)
  captureMergeContract(env)
  captureSetupContract(env)
  captureReaderContract(env, { redis: false })
})

describe.runIf(hasPostgres)('change capture on PostgreSQL', () => {
  const env = useCaptureEnv(createPostgresDatabase)
  captureContract(env)
  captureMergeContract(env)
  captureSetupContract(env)
  captureReaderContract(env, { redis: hasRedis })
  captureConcurrencyContract(env)
})
