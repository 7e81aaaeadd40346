/**
 * The IPC conformance suite: ONE set of cases that runs unchanged against every driver
 * (as drizzle's `tests()` in `pg-common.ts`). Each driver's test file calls `runIpcContract`.
 *
 * @example
 * // memory.test.ts
 * const root = new MemoryIpc()
 * runIpcContract('memory', async () => root.createPeer(), {
 *   spawnPeers: (count) => inProcessPeers(count, () => root.createPeer()),
 * })
 *
 * `makeIpc` must return a new instance on the SAME store each time (a second connection / a
 * second process's view): the suite uses two of them to test lock ownership and pub/sub across
 * instances, and closes every instance it made. Keys start with a random prefix per run.
 *
 * The multi-process part runs when `spawnPeers` is given (see `peer.ts` for how each driver
 * builds its peers): N peers x M incrBy give the exact total; under contention a lock never has
 * two holders (a critical section counts who is inside); a publish reaches every subscriber in
 * every process, this one included, exactly once.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import type { Ipc, Json } from '../types.js'
import { assert, sleep, waitFor } from './cases/helpers.js'
import { contractCases } from './cases/index.js'
import type { IpcPeer } from './peer.js'
import { ContractSession } from './session.js'

export interface IpcContractOptions {
  /** Creates `count` peers on the same store (other processes, or other instances for memory). */
  spawnPeers?: (count: number) => Promise<IpcPeer[]>
  /** @default 4 */
  peerCount?: number
  /** incrBy calls per peer in the counter test. @default 2000 */
  incrementsPerPeer?: number
  /** Per-test timeout of the multi-process tests, in ms. @default 60000 */
  multiProcessTimeoutMs?: number
}

export function runIpcContract(
  name: string,
  makeIpc: () => Promise<Ipc>,
  options: IpcContractOptions = {},
): void {
  describe(`IPC contract: ${name}`, () => {
    let session: ContractSession | undefined
    beforeAll(async () => {
      session = await ContractSession.open(makeIpc)
    })
    afterAll(async () => {
      await session?.close()
    })

    const groups = [...new Set(contractCases.map((contractCase) => contractCase.group))]
    for (const group of groups) {
      describe(group, () => {
        for (const contractCase of contractCases.filter((c) => c.group === group)) {
          it(contractCase.name, async () => {
            if (!session) throw new Error('the contract session did not open')
            await contractCase.run(session.context(contractCase))
          })
        }
      })
    }

    if (options.spawnPeers) {
      describe('multi-process', () => {
        runMultiProcess(
          () => session,
          options as Required<Pick<IpcContractOptions, 'spawnPeers'>> & IpcContractOptions,
        )
      })
    }
  })
}

function runMultiProcess(
  getSession: () => ContractSession | undefined,
  options: IpcContractOptions & Required<Pick<IpcContractOptions, 'spawnPeers'>>,
): void {
  const count = options.peerCount ?? 4
  const increments = options.incrementsPerPeer ?? 2000
  const timeout = options.multiProcessTimeoutMs ?? 60_000
  let peers: IpcPeer[] = []
  const key = (name: string) => `${getSession()!.prefix}:multi:${name}`

  beforeAll(async () => {
    peers = await options.spawnPeers(count)
    assert.equal(peers.length, count, 'spawnPeers returned the wrong number of peers')
  }, timeout)
  afterAll(async () => {
    await Promise.all(peers.map((peer) => peer.close()))
  }, timeout)

  it(
    `${count} peers x ${increments} incrBy give the exact total`,
    async () => {
      const results = await Promise.all(
        peers.map((peer) =>
          peer.run({ type: 'incr', key: key('counter'), times: increments, concurrency: 16 }),
        ),
      )
      assert.deepStrictEqual(
        results.map((result) => result.done),
        peers.map(() => increments),
      )
      assert.equal(await getSession()!.ipc.get(key('counter')), count * increments)
    },
    timeout,
  )

  it(
    'under contention a lock never has two holders',
    async () => {
      const rounds = 25
      const results = await Promise.all(
        peers.map((peer) =>
          peer.run({
            type: 'lock-contention',
            lockKey: key('lock'),
            activeKey: key('active'),
            rounds,
            holdMs: 2,
          }),
        ),
      )
      assert.deepStrictEqual(
        results.map((result) => result.violations),
        peers.map(() => 0),
        'a critical section saw another holder inside',
      )
      assert.equal(
        results.reduce((sum, result) => sum + result.rounds, 0),
        count * rounds,
      )
      assert.equal(await getSession()!.ipc.get(key('active')), 0)
      assert.equal(await getSession()!.ipc.lock(key('lock'), 1), true, 'the lock is free at the end')
      await getSession()!.ipc.unlock(key('lock'))
    },
    timeout,
  )

  it(
    'a publish reaches every subscriber in every process exactly once',
    async () => {
      const ipc = getSession()!.ipc
      const channel = key('channel')
      const local: Json[] = []
      const unsubscribe = await ipc.subscribe(channel, (message) => local.push(message))
      await Promise.all(peers.map((peer) => peer.run({ type: 'subscribe', channel, handlers: 2 })))
      const fromPeer = Array.from({ length: 20 }, (_, i) => ({ from: 'peer', i }))
      const fromHere = Array.from({ length: 20 }, (_, i) => ({ from: 'here', i }))
      await Promise.all([
        peers[0]!.run({ type: 'publish', channel, messages: fromPeer }),
        (async () => {
          for (const message of fromHere) await ipc.publish(channel, message)
        })(),
      ])
      const expected = sortMessages([...fromPeer, ...fromHere])
      const total = expected.length
      await waitFor(() => local.length >= total, 10_000, 'local deliveries')
      const deadline = Date.now() + 10_000
      let perPeer: Json[][][] = []
      for (;;) {
        perPeer = await Promise.all(
          peers.map(async (peer) => (await peer.run({ type: 'received', channel })).perHandler),
        )
        if (perPeer.every((handlers) => handlers.every((list) => list.length >= total))) break
        if (Date.now() > deadline) break
        await sleep(20)
      }
      await sleep(100) // a duplicate would show up by now
      perPeer = await Promise.all(
        peers.map(async (peer) => (await peer.run({ type: 'received', channel })).perHandler),
      )
      assert.deepStrictEqual(sortMessages(local), expected, 'the test process subscriber')
      assertPublisherOrder(local, 'the test process subscriber')
      for (const [p, handlers] of perPeer.entries()) {
        assert.equal(handlers.length, 2)
        for (const [h, list] of handlers.entries()) {
          assert.deepStrictEqual(sortMessages(list), expected, `peer ${p} handler ${h}`)
          assertPublisherOrder(list, `peer ${p} handler ${h}`)
        }
      }
      await unsubscribe()
    },
    timeout,
  )
}

/** Messages from one publisher arrive in the order it published them. */
function assertPublisherOrder(messages: Json[], who: string): void {
  for (const from of ['peer', 'here']) {
    const sequence = messages
      .filter((message) => (message as { from?: string }).from === from)
      .map((message) => (message as { i: number }).i)
    assert.deepStrictEqual(
      sequence,
      [...sequence].sort((a, b) => a - b),
      `${who}: order of ${from}'s messages`,
    )
  }
}

function sortMessages(messages: Json[]): string[] {
  return messages.map((message) => JSON.stringify(message)).sort()
}
