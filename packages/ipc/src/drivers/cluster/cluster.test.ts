/**
 * The cluster driver with real forked workers. This vitest process is the cluster primary.
 *
 * How the contract covers both sides (why this shape): the same suite runs twice.
 * 1. In this process, against primary-side instances (`runIpcContract`), with 4 forked workers
 *    as peers for the multi-process part (exact counter total, lock exclusion, pub/sub to every
 *    process including this one).
 * 2. In a forked worker, against a worker-side instance: the worker runs every contract case
 *    itself (`runContractCases`, plain node:assert) and reports pass/fail per case, and this file
 *    turns each report into its own test. So every method, every bad input (functions, BigInt,
 *    cyclic values are created in the worker, where they cannot be serialised away) and every
 *    edge case travels the real worker -> primary -> worker path. A proxy that forwarded calls
 *    from here would have had to serialise the bad inputs first, testing nothing.
 * Then cluster-specific tests: malformed messages, SIGKILL mid-traffic, locks of a dead worker,
 * coalescing (counted on the real IPC channel), and request timeouts.
 */
import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContractCaseResult, PeerProcess } from '../../testing/index.js'
import { caseId, connectPeer, contractCases, runIpcContract } from '../../testing/index.js'
import { ClusterIpc } from './cluster-ipc.js'
import { MARK } from './protocol.js'

cluster.setupPrimary({
  exec: fileURLToPath(new URL('./__tests__/worker.ts', import.meta.url)),
  execArgv: ['--import', 'tsx', '--conditions=source'],
})

/** Keeps the primary's hub alive for the whole file; workers talk to it. */
const primary = await ClusterIpc.create({ driver: 'cluster' })
const workers = new Set<Worker>()

function fork(mode: 'contract' | 'peer' | 'scenario'): Worker {
  const worker = cluster.fork({ TIDESYNC_TEST_MODE: mode })
  workers.add(worker)
  worker.on('exit', () => workers.delete(worker))
  return worker
}

/** The next test message of `type` from `worker`. */
function nextMessage<T = Record<string, unknown>>(
  worker: Worker,
  type: string,
  timeoutMs = 30_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${type} from worker within ${timeoutMs} ms`)),
      timeoutMs,
    )
    const listener = (message: { test?: boolean; type?: string; error?: string }) => {
      if (!message?.test) return
      if (message.type === 'fatal' || message.type === 'scenario-error') {
        clearTimeout(timer)
        worker.off('message', listener)
        reject(new Error(`worker failed: ${message.error}`))
      } else if (message.type === type) {
        clearTimeout(timer)
        worker.off('message', listener)
        resolve(message as T)
      }
    }
    worker.on('message', listener)
  })
}

async function scenarioWorker(): Promise<Worker> {
  const worker = fork('scenario')
  await nextMessage(worker, 'ready')
  return worker
}

function runScenario<T>(worker: Worker, scenario: Record<string, unknown>): Promise<T> {
  const result = nextMessage<{ result: T }>(worker, 'scenario-result')
  worker.send({ test: true, type: 'scenario', scenario })
  return result.then((message) => message.result)
}

function exited(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (worker.isDead()) resolve()
    else worker.once('exit', () => resolve())
  })
}

// Start the worker-side contract run now, so it overlaps the primary-side run below.
const contractWorker = fork('contract')
const workerResults = nextMessage<{ results: ContractCaseResult[] }>(
  contractWorker,
  'contract-results',
  240_000,
)
workerResults.catch(() => {}) // awaited (and reported) by the worker-side tests

afterAll(async () => {
  for (const worker of workers) worker.process.kill('SIGKILL')
  await Promise.all([...workers].map(exited))
  await primary.close()
})

runIpcContract('cluster (primary side, workers as peers)', () => ClusterIpc.create({ driver: 'cluster' }), {
  spawnPeers: (count) =>
    Promise.all(Array.from({ length: count }, () => connectPeer(fork('peer') as unknown as PeerProcess))),
})

describe('IPC contract: cluster (worker side, run inside a forked worker)', () => {
  let results = new Map<string, ContractCaseResult>()
  beforeAll(async () => {
    const message = await workerResults
    results = new Map(message.results.map((result) => [caseId(result), result]))
  }, 240_000)

  for (const contractCase of contractCases) {
    it(caseId(contractCase), () => {
      const result = results.get(caseId(contractCase))
      expect(result, 'the worker reported this case').toBeDefined()
      if (!result?.ok) throw new Error(`failed in the worker:\n${result?.error}`)
    })
  }
})

describe('cluster driver specifics', () => {
  it('the primary survives malformed messages, answers identifiable ones, then serves valid requests', async () => {
    const worker = await scenarioWorker()
    const key = `malformed:${Date.now()}`
    const { replies, afterwards } = await runScenario<{
      replies: { items: unknown[] }[]
      afterwards: number
    }>(worker, {
      name: 'raw',
      key,
      messages: [
        'a plain string from the app',
        { app: 'message without the tag' },
        { [MARK]: 1 },
        { [MARK]: 99, type: 'requests', requests: [] },
        { [MARK]: 1, type: 'requests', requests: 'not an array' },
        { [MARK]: 1, type: 'requests', requests: [null, 5, { id: 'x' }, { noId: true }] },
        {
          [MARK]: 1,
          type: 'requests',
          requests: [
            { type: 'command', id: 1001, name: 'noSuchCommand', args: [] },
            { type: 'command', id: 1002, name: '__proto__', args: [] },
            { type: 'command', id: 1003, name: 'incrBy', args: 'not an array' },
            { type: 'command', id: 1004, name: 'incrBy', args: [key, 'one'] },
            { type: 'command', id: 1005, name: 'incrBy', args: ['', 1] },
            { type: 'command', id: 1006, name: 'set', args: [key, 1] },
            { type: 'command', id: 1007, name: 'hset', args: [key, { a: 1 }, 'extra'] },
            { type: 'publish', id: 1008, channel: 'c', payload: '{not json' },
            { type: 'subscribe', id: 1009, channel: 42 },
            { type: 'what', id: 1010 },
            { type: 'command', id: 1011, name: 'get', args: [key] },
          ],
        },
      ],
    })
    const items = replies.flatMap((reply) => reply.items) as { id: number; type: string; code?: string }[]
    const byId = new Map(items.map((item) => [item.id, item]))
    expect(byId.get(1001)).toMatchObject({ type: 'error', code: 'IPC_PROTOCOL' })
    expect(byId.get(1002)).toMatchObject({ type: 'error', code: 'IPC_PROTOCOL' })
    expect(byId.get(1003)).toMatchObject({ type: 'error', code: 'IPC_PROTOCOL' })
    expect(byId.get(1004)).toMatchObject({ type: 'error', code: 'IPC_INVALID_ARGUMENT' })
    expect(byId.get(1005)).toMatchObject({ type: 'error', code: 'IPC_INVALID_KEY' })
    expect(byId.get(1006)).toMatchObject({ type: 'error', code: 'IPC_INVALID_ARGUMENT' })
    expect(byId.get(1007)).toMatchObject({ type: 'error', code: 'IPC_INVALID_ARGUMENT' })
    expect(byId.get(1008)).toMatchObject({ type: 'error', code: 'IPC_PROTOCOL' })
    expect(byId.get(1009)).toMatchObject({ type: 'error', code: 'IPC_INVALID_ARGUMENT' })
    expect(byId.get(1010)).toMatchObject({ type: 'error', code: 'IPC_PROTOCOL' })
    expect(byId.get(1011)).toMatchObject({ type: 'ok' }) // a valid request in a batch with bad ones
    expect(items).toHaveLength(11) // nothing answered for requests without an id
    expect(afterwards).toBe(1) // the primary is up, and no malformed request stored anything
    expect(await primary.get(key)).toBe(1)
    expect(Object.prototype).not.toHaveProperty('a')
  })

  it('a worker killed with SIGKILL mid-traffic loses nothing that was acknowledged', async () => {
    const worker = await scenarioWorker()
    const key = `traffic:${Date.now()}`
    const acked: number[] = []
    worker.on('message', (message: { test?: boolean; type?: string; items?: number[] }) => {
      if (message?.test && message.type === 'acked') acked.push(...message.items!)
    })
    worker.send({ test: true, type: 'scenario', scenario: { name: 'traffic', key } })
    while (acked.length < 3000) await new Promise((resolve) => setTimeout(resolve, 5))
    worker.process.kill('SIGKILL')
    await exited(worker)
    const stored = await primary.lrange<number>(key, 0, -1)
    const storedSet = new Set(stored)
    expect(storedSet.size).toBe(stored.length) // nothing applied twice
    const missing = acked.filter((item) => !storedSet.has(item))
    expect(missing).toEqual([])
    expect(stored.length).toBeGreaterThanOrEqual(acked.length)
    expect(await primary.incrBy(`${key}:after`, 1)).toBe(1) // the primary carries on
  })

  it('the locks of a dead worker are released at once (not after their 60 s TTL)', async () => {
    const worker = await scenarioWorker()
    const key = `dead-holder:${Date.now()}`
    expect(await runScenario(worker, { name: 'lock', key })).toEqual({ locked: true })
    expect(await primary.lock(key, 1)).toBe(false)
    worker.process.kill('SIGKILL')
    await exited(worker)
    expect(await primary.lock(key, 1)).toBe(true)
    await primary.unlock(key)
  })

  it('coalesces: 2,000 concurrent operations travel in a handful of messages each way', async () => {
    const worker = await scenarioWorker()
    const key = `coalesce:${Date.now()}`
    let envelopesFromWorker = 0
    const count = (message: unknown) => {
      if (typeof message === 'object' && message !== null && MARK in message) envelopesFromWorker++
    }
    worker.on('message', count)
    const { max, envelopes } = await runScenario<{ max: number; envelopes: number }>(worker, {
      name: 'burst',
      key,
      count: 2000,
    })
    worker.off('message', count)
    expect(max).toBe(2000)
    expect(await primary.get(key)).toBe(2000)
    // 1 warm-up + the burst (+ close); without coalescing it would be 2,001 messages each way.
    expect(envelopesFromWorker).toBeLessThanOrEqual(5)
    expect(envelopes).toBeLessThanOrEqual(4)
  })

  it('a request that times out fails with outcome unknown and is never re-sent', async () => {
    const worker = await scenarioWorker()
    const key = `timeout:${Date.now()}`
    const commands: unknown[] = []
    const record = (message: { requests?: { type: string; name?: string; args?: unknown[] }[] }) => {
      if (typeof message !== 'object' || message === null || !(MARK in message)) return
      for (const request of message.requests ?? []) {
        if (request.type === 'command' && request.args?.[0] === key) commands.push(request.name)
      }
    }
    const block = (message: { test?: boolean; type?: string; ms?: number }) => {
      if (!message?.test || message.type !== 'block-primary') return
      const until = Date.now() + message.ms!
      while (Date.now() < until) {
        // The primary is stuck (a long synchronous job): the worker's request waits in the pipe.
      }
    }
    worker.on('message', record)
    worker.on('message', block)
    const outcome = await runScenario<Record<string, unknown>>(worker, { name: 'timeout', key })
    expect(outcome).toMatchObject({
      resolved: false,
      unavailable: true,
      code: 'IPC_UNAVAILABLE',
      outcomeUnknown: true,
    })
    expect(outcome.afterMs).toBeLessThan(450) // it failed at its deadline, not when the answer came
    expect(outcome.valueSeenLater).toBe(1) // it WAS applied (hence "outcome unknown"), exactly once
    expect(commands).toEqual(['incrBy', 'get']) // the incrBy was sent once, never again
    expect(await primary.get(key)).toBe(1)
  })
})
