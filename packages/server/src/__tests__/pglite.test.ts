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
import { createPgliteDatabase } from './fixtures/databases.js'

describe('server contract on PGlite', () => {
  const env = useContractEnv(createPgliteDatabase)
  servicesContract(env)
  pushContract(env)
  pushBatchContract(env)
  groupCommitContract(env)
  fullContract(env)
  deltaContract(env)
  pullColumnsContract(env)
  scopeContract(env)
  bufferContract(env)
})
