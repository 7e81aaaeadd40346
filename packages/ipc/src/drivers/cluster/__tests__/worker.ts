/**
 * The worker side of cluster.test.ts (run with tsx by cluster.fork). TIDESYNC_TEST_MODE picks
 * what it does:
 * - contract: runs every contract case against a worker-side ClusterIpc and reports the results;
 * - peer: serves the multi-process contract's peer tasks;
 * - scenario: waits for `{ test: 'scenario', name }` messages from the test and runs them.
 * Test messages are untagged (no `__tidesync_ipc`), so the driver ignores them, as it must.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { IpcUnavailableError } from '../../../errors.js'
import { runContractCases, servePeer } from '../../../testing/index.js'
import { ClusterIpc } from '../cluster-ipc.js'
import { MARK } from '../protocol.js'

const send = (message: Record<string, unknown>) => process.send?.({ test: true, ...message })
const create = (requestTimeoutMs?: number) => ClusterIpc.create({ driver: 'cluster', requestTimeoutMs })

/** Counts the driver's envelopes arriving from the primary (a real listener on the channel). */
let envelopesIn = 0
process.on('message', (message) => {
  if (typeof message === 'object' && message !== null && MARK in message) envelopesIn++
})

type Scenario = { name: string; key: string; [option: string]: unknown }

const scenarios: Record<string, (s: Scenario) => Promise<unknown>> = {
  /** Sends raw messages (malformed on purpose), then a valid request; reports what came back. */
  async raw(s) {
    const replies: unknown[] = []
    const listener = (message: unknown) => {
      if (typeof message === 'object' && message !== null && MARK in message) replies.push(message)
    }
    process.on('message', listener)
    for (const message of s.messages as unknown[]) process.send?.(message)
    await sleep(200)
    process.off('message', listener)
    const ipc = await create(2000)
    const afterwards = await ipc.incrBy(s.key, 1)
    await ipc.close()
    return { replies, afterwards }
  },

  /** rpush sequence numbers from 32 concurrent callers, reporting acknowledged ones every 5 ms. */
  async traffic(s) {
    const ipc = await create()
    let next = 0
    let acked: number[] = []
    const report = setInterval(() => {
      if (acked.length > 0) send({ type: 'acked', items: acked })
      acked = []
    }, 5)
    const caller = async () => {
      for (;;) {
        const item = next++
        await ipc.rpush(s.key, item)
        acked.push(item)
      }
    }
    await Promise.all(Array.from({ length: 32 }, caller)).finally(() => clearInterval(report))
  },

  /** Takes a long lock and reports it (then gets killed). */
  async lock(s) {
    const ipc = await create()
    return { locked: await ipc.lock(s.key, 60) }
  },

  /** `count` concurrent incrBy calls; reports how many driver envelopes came back for them. */
  async burst(s) {
    const ipc = await create()
    await ipc.get(s.key) // warm up
    const before = envelopesIn
    const results = await Promise.all(Array.from({ length: s.count as number }, () => ipc.incrBy(s.key, 1)))
    const envelopes = envelopesIn - before
    await ipc.close()
    return { max: Math.max(...results), envelopes }
  },

  /** Asks the primary to block, sends one request with a short timeout, reports the outcome. */
  async timeout(s) {
    const ipc = await create(100)
    send({ type: 'block-primary', ms: 500 })
    const started = Date.now()
    let outcome: Record<string, unknown> = { resolved: true }
    try {
      await ipc.incrBy(s.key, 1)
    } catch (error) {
      outcome = {
        resolved: false,
        unavailable: error instanceof IpcUnavailableError,
        code: (error as IpcUnavailableError).code,
        outcomeUnknown: (error as IpcUnavailableError).outcomeUnknown,
        afterMs: Date.now() - started,
      }
    }
    await sleep(800) // the late answer arrives meanwhile and must be ignored
    const value = await ipc.get(s.key)
    await ipc.close()
    return { ...outcome, valueSeenLater: value }
  },
}

async function main(): Promise<void> {
  switch (process.env.TIDESYNC_TEST_MODE) {
    case 'contract': {
      const results = await runContractCases(() => create())
      send({ type: 'contract-results', results })
      break
    }
    case 'peer':
      await servePeer(() => create())
      break
    case 'scenario':
      process.on('message', (message: { test?: boolean; type?: string; scenario?: Scenario }) => {
        if (!message?.test || message.type !== 'scenario' || !message.scenario) return
        const scenario = message.scenario
        scenarios[scenario.name]!(scenario).then(
          (result) => send({ type: 'scenario-result', result }),
          (error: unknown) =>
            send({ type: 'scenario-error', error: String((error as Error)?.stack ?? error) }),
        )
      })
      send({ type: 'ready' })
      break
    default:
      throw new Error(`unknown TIDESYNC_TEST_MODE ${process.env.TIDESYNC_TEST_MODE}`)
  }
}

main().catch((error: unknown) => {
  send({ type: 'fatal', error: String((error as Error)?.stack ?? error) })
  process.exitCode = 1
})
