import { requireServer } from '@tidesync/test-env'
import { describe } from 'vitest'
import { bufferContract } from './contract/buffer.contract.js'
import { deltaContract } from './contract/delta.contract.js'
import { useContractEnv } from './contract/env.js'
import { fullContract } from './contract/full.contract.js'
import { groupCommitContract } from './contract/group-commit.contract.js'
import { pullColumnsContract } from './contract/pull-columns.contract.js'
import { pushContract } from './contract/push.contract.js'
import { pushBatchContract } from './contract/push-batch.contract.js'
import { scopeContract } from './contract/scope.contract.js'
import { servicesContract } from './contract/services.contract.js'
import { snapshotPlanContract } from './contract/snapshot-plan.contract.js'
import { createPostgresDatabase } from './fixtures/databases.js'

const hasPostgres = await requireServer('postgres')

describe.runIf(hasPostgres)('server contract on PostgreSQL', () => {
  const env = useContractEnv(createPostgresDatabase)
  servicesContract(env)
  pushContract(env)
  pushBatchContract(env)
  groupCommitContract(env)
  fullContract(env)
  deltaContract(env)
  pullColumnsContract(env)
  snapshotPlanContract(env)
  scopeContract(env)
  bufferContract(env)
})
