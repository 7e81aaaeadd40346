/**
 * Peers for the multi-process part of the contract: other processes (or, for the memory
 * driver, other in-process instances) that run fixed tasks against the same store.
 *
 * A driver's test provides a "peer factory", `spawnPeers(count) => Promise<IpcPeer[]>`:
 * - memory: `inProcessPeers(count, () => root.createPeer())` (concurrent callers, one process);
 * - cluster: fork workers whose script calls `servePeer(() => ClusterIpc.create(...))`, and wrap
 *   each with `connectPeer(worker)`;
 * - redis: `forkPeer(scriptPath)` per peer, where the script calls
 *   `servePeer(() => createIpc({ driver: 'redis', ... }))` (each child has its own connection).
 * A peer process speaks a tiny request/response protocol over its IPC channel (messages tagged
 * `__tidesync_ipc_peer`), so it works with `child_process.fork` and `cluster.fork` alike.
 * This module does not import vitest: peer processes can load it.
 */
import { type ChildProcess, fork } from 'node:child_process'
import type { Ipc, Json } from '../types.js'

export const PEER_MARK = '__tidesync_ipc_peer'

export type PeerTask =
  /** `times` incrBy(key, 1) calls, `concurrency` at a time. */
  | { type: 'incr'; key: string; times: number; concurrency: number }
  /**
   * `rounds` withLock(lockKey) critical sections; inside, incrBy(activeKey, 1) must return 1
   * (nobody else inside), then it waits `holdMs` and decrements. Counts violations.
   */
  | { type: 'lock-contention'; lockKey: string; activeKey: string; rounds: number; holdMs: number }
  /** Subscribes `handlers` separate handlers to `channel`, each recording what it receives. */
  | { type: 'subscribe'; channel: string; handlers: number }
  | { type: 'publish'; channel: string; messages: Json[] }
  /** What each handler of `channel` has received so far. */
  | { type: 'received'; channel: string }

export interface PeerResults {
  incr: { done: number }
  'lock-contention': { rounds: number; violations: number }
  subscribe: { subscribed: number }
  publish: { published: number }
  received: { perHandler: Json[][] }
}

export type PeerResult<T extends PeerTask> = PeerResults[T['type']]

/** One peer, as the contract drives it. */
export interface IpcPeer {
  run<T extends PeerTask>(task: T): Promise<PeerResult<T>>
  /** Closes the peer's IPC instance and ends its process (if it has one). */
  close(): Promise<void>
}

/** Runs peer tasks against one IPC instance (inside a peer process, or in-process). */
export class PeerRuntime {
  private readonly received = new Map<string, Json[][]>()

  constructor(readonly ipc: Ipc) {}

  async run(task: PeerTask): Promise<PeerResults[PeerTask['type']]> {
    const ipc = this.ipc
    switch (task.type) {
      case 'incr': {
        let next = 0
        const worker = async () => {
          while (next < task.times) {
            next++
            await ipc.incrBy(task.key, 1)
          }
        }
        await Promise.all(Array.from({ length: task.concurrency }, worker))
        return { done: task.times }
      }
      case 'lock-contention': {
        let violations = 0
        for (let round = 0; round < task.rounds; round++) {
          await ipc.withLock(
            task.lockKey,
            30,
            async () => {
              if ((await ipc.incrBy(task.activeKey, 1)) !== 1) violations++
              await new Promise((resolve) => setTimeout(resolve, task.holdMs))
              await ipc.decrBy(task.activeKey, 1)
            },
            { waitMs: 60_000, retryDelayMs: 2 },
          )
        }
        return { rounds: task.rounds, violations }
      }
      case 'subscribe': {
        const lists: Json[][] = []
        this.received.set(task.channel, lists)
        for (let i = 0; i < task.handlers; i++) {
          const list: Json[] = []
          lists.push(list)
          await ipc.subscribe(task.channel, (message) => list.push(message))
        }
        return { subscribed: task.handlers }
      }
      case 'publish':
        for (const message of task.messages) await ipc.publish(task.channel, message)
        return { published: task.messages.length }
      case 'received':
        return { perHandler: this.received.get(task.channel) ?? [] }
    }
  }
}

/** Peers that share this process (the memory driver): each gets its own instance. */
export async function inProcessPeers(count: number, makeIpc: () => Promise<Ipc> | Ipc): Promise<IpcPeer[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const runtime = new PeerRuntime(await makeIpc())
      return {
        run: (task) => runtime.run(task),
        close: () => runtime.ipc.close(),
      } as IpcPeer
    }),
  )
}

type PeerRequest =
  | { [PEER_MARK]: 1; type: 'run'; id: number; task: PeerTask }
  | { [PEER_MARK]: 1; type: 'close'; id: number }
type PeerReply =
  | { [PEER_MARK]: 1; type: 'ready' }
  | { [PEER_MARK]: 1; type: 'done'; id: number; result?: unknown }
  | { [PEER_MARK]: 1; type: 'failed'; id: number; error: string }

function isPeerMessage(message: unknown): message is Record<string, unknown> {
  return typeof message === 'object' && message !== null && PEER_MARK in message
}

/**
 * The peer process's main function: creates the instance, then runs the tasks it is sent over
 * the process's IPC channel until told to close. Call it from the driver's peer script.
 */
export async function servePeer(makeIpc: () => Promise<Ipc>): Promise<void> {
  if (typeof process.send !== 'function')
    throw new Error('servePeer must run in a process forked with an IPC channel')
  const send = (reply: PeerReply) => process.send?.(reply)
  const runtime = new PeerRuntime(await makeIpc())
  const onMessage = async (message: unknown) => {
    if (!isPeerMessage(message)) return
    const request = message as PeerRequest
    try {
      if (request.type === 'close') {
        process.off('message', onMessage)
        await runtime.ipc.close()
        send({ [PEER_MARK]: 1, type: 'done', id: request.id })
        return
      }
      send({ [PEER_MARK]: 1, type: 'done', id: request.id, result: await runtime.run(request.task) })
    } catch (error) {
      send({
        [PEER_MARK]: 1,
        type: 'failed',
        id: request.id,
        error: String((error as Error)?.stack ?? error),
      })
    }
  }
  process.on('message', onMessage)
  send({ [PEER_MARK]: 1, type: 'ready' })
}

/** A forked process (child_process or cluster worker) running `servePeer`. */
export interface PeerProcess {
  send(message: unknown): boolean
  on(event: 'message', listener: (message: unknown) => void): unknown
  on(event: 'exit', listener: () => void): unknown
  off(event: 'message', listener: (message: unknown) => void): unknown
  kill(signal?: NodeJS.Signals | number): unknown
}

/**
 * Wraps a forked process that runs `servePeer` as an `IpcPeer`. Resolves once the peer is ready.
 * `close()` asks the peer to close its instance, then kills the process if it has not exited.
 */
export function connectPeer(child: PeerProcess, options: { readyTimeoutMs?: number } = {}): Promise<IpcPeer> {
  let nextId = 1
  let exited = false
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  let ready: () => void = () => {}
  const readyPromise = new Promise<void>((resolve) => (ready = resolve))
  const onMessage = (message: unknown) => {
    if (!isPeerMessage(message)) return
    const reply = message as PeerReply
    if (reply.type === 'ready') return ready()
    const pending = waiting.get(reply.id)
    waiting.delete(reply.id)
    if (reply.type === 'done') pending?.resolve(reply.result)
    else pending?.reject(new Error(`peer task failed: ${reply.error}`))
  }
  child.on('message', onMessage)
  child.on('exit', () => {
    exited = true
    for (const pending of waiting.values()) pending.reject(new Error('peer process exited'))
    waiting.clear()
  })
  const request = (body: { type: 'run'; task: PeerTask } | { type: 'close' }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error('peer process exited'))
      const id = nextId++
      waiting.set(id, { resolve, reject })
      child.send({ [PEER_MARK]: 1, id, ...body })
    })
  const peer: IpcPeer = {
    run: (task) => request({ type: 'run', task }) as never,
    close: async () => {
      if (!exited) {
        await Promise.race([
          request({ type: 'close' }).catch(() => {}),
          new Promise((r) => setTimeout(r, 5000)),
        ])
      }
      child.off('message', onMessage)
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.on('exit', resolve))
        child.kill()
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
      }
    },
  }
  const timeoutMs = options.readyTimeoutMs ?? 30_000
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer not ready within ${timeoutMs} ms`)), timeoutMs)
    child.on('exit', () => reject(new Error('peer process exited before it was ready')))
    readyPromise.then(() => {
      clearTimeout(timer)
      resolve(peer)
    })
  })
}

export interface ForkPeerOptions {
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv
  /** @default ['--import', 'tsx', '--conditions=source'] (runs TypeScript sources) */
  execArgv?: string[]
}

/** Forks `script` (which calls `servePeer`) as a child process and connects to it. */
export async function forkPeer(script: string, options: ForkPeerOptions = {}): Promise<IpcPeer> {
  const child: ChildProcess = fork(script, [], {
    env: { ...process.env, ...options.env },
    execArgv: options.execArgv ?? ['--import', 'tsx', '--conditions=source'],
    stdio: 'inherit',
  })
  return connectPeer(child as unknown as PeerProcess)
}
