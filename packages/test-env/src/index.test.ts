import { describe, expect, it } from 'vitest'
import { createTestDatabase, probePostgres, probeRedis, requireServer, uniqueId } from './index.js'

const hasPostgres = await requireServer('postgres')

describe('test-env', () => {
  it('reports an unreachable Redis with a reason instead of hanging', async () => {
    const reason = await probeRedis('redis://127.0.0.1:1')
    expect(reason).toMatch(/unreachable/)
  })

  it('reports an unreachable PostgreSQL with a reason', async () => {
    const reason = await probePostgres('postgres://postgres@127.0.0.1:1/test')
    expect(reason).toMatch(/unreachable/)
  })

  it('makes unique ids', () => {
    expect(uniqueId('a')).not.toBe(uniqueId('a'))
  })

  it.runIf(hasPostgres)('creates and drops a throwaway database', async () => {
    const database = await createTestDatabase('envtest')
    expect(database.url).toContain(database.name)
    await database.drop()
  })
})
