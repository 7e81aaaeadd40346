import 'fake-indexeddb/auto'
import { randomBytes } from 'node:crypto'
import { createClient, type SyncStatus, type TidesyncClient, type TidesyncSocket } from '@tidesync/client'
import type { ChangesPush, PushRequest, PushResult, Reply } from '@tidesync/server/protocol'
import { io } from 'socket.io-client'
import type { Prng } from './prng.js'
import type { Recorder } from './recorder.js'
import { schema } from './schema.js'

const silent = { debug() {}, info() {}, warn() {}, error() {} }

/** The uids created so far by any client, with their creator (shared by every simulated client). */
export interface UidPool {
  items: Array<{ uid: string; owner: number }>
}

export interface SimClientOptions {
  index: number
  url: string
  recorder: Recorder
  /** Per-request timeout of the client. @default 10000 */
  requestTimeoutMs?: number
  /** The socket.io handshake's `auth` (a `scoped` server needs one). @default none */
  auth?: Record<string, unknown>
}

export type OpKind = 'create' | 'update' | 'increment' | 'delete'

/**
 * One simulated user: a real `@tidesync/client` (Dexie on fake-indexeddb) on a real
 * socket.io-client socket that the test made, so it can record what goes over it. The socket
 * is wrapped only to observe: every `sync:push` and its answer, every live `changes` push.
 */
export class SimClient {
  readonly client: TidesyncClient<typeof schema>
  readonly socket: TidesyncSocket
  readonly name: string
  readonly ops: Record<OpKind | 'skipped', number> = {
    create: 0,
    update: 0,
    increment: 0,
    delete: 0,
    skipped: 0,
  }
  private created = 0

  constructor(private readonly options: SimClientOptions) {
    const { index, recorder } = options
    this.name = `c${index}`
    const socket = io(options.url, {
      autoConnect: false,
      forceNew: true,
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 1000,
      timeout: 5000,
      ...(options.auth ? { auth: options.auth } : {}),
    }) as TidesyncSocket
    this.socket = socket
    socket.on('connect', () => recorder.connected(index, Date.now()))
    socket.on('disconnect', (reason) => recorder.disconnected(index, reason, Date.now()))
    socket.on('changes', (push: ChangesPush) => recorder.live(index, push, Date.now()))
    const emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => TidesyncSocket
    ;(socket as unknown as { emit: typeof emit }).emit = (event: string, ...args: unknown[]) => {
      if (event === 'sync:push' && typeof args[1] === 'function') {
        const request = args[0] as PushRequest
        const ack = args[1] as (reply: Reply<PushResult>) => void
        recorder.pushed(index, request.changes, Date.now())
        return emit(event, request, (reply: Reply<PushResult>) => {
          recorder.answered(index, reply, Date.now())
          ack(reply)
        })
      }
      return emit(event, ...args)
    }
    this.client = createClient({
      socket,
      schema,
      models: { items: { counters: ['likes'] } },
      dbName: `rel-${this.name}-${randomBytes(6).toString('hex')}`,
      logger: silent,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      retry: { minDelayMs: 100, maxDelayMs: 2000 },
      lease: { leaseMs: 3000, retryMs: 5 },
    })
  }

  get index(): number {
    return this.options.index
  }

  get items() {
    return this.client.collection('items')
  }

  /** Starts keeping every item in sync (one subset: all items). */
  start(): () => void {
    return this.items.sync()
  }

  /** One random write, chosen by `rng`; returns what it did. */
  async step(rng: Prng, pool: UidPool): Promise<OpKind | 'skipped'> {
    const roll = rng.next()
    const kind: OpKind =
      roll < 0.25 || pool.items.length < 4
        ? 'create'
        : roll < 0.55
          ? 'update'
          : roll < 0.9
            ? 'increment'
            : 'delete'
    const done = await this.run(kind, rng, pool)
    this.ops[done]++
    return done
  }

  private async run(kind: OpKind, rng: Prng, pool: UidPool): Promise<OpKind | 'skipped'> {
    const items = this.items
    try {
      if (kind === 'create') {
        const title = `${this.name}-${++this.created}`
        const record = await items.create({ owner: this.name, title, note: '', done: false })
        pool.items.push({ uid: record.uid, owner: this.index })
        return 'create'
      }
      const mine = kind === 'delete'
      const candidates = mine ? pool.items.filter((item) => item.owner === this.index) : pool.items
      if (candidates.length === 0) return 'skipped'
      const target = rng.pick(candidates)
      if (!(await items.get(target.uid))) return 'skipped'
      if (kind === 'increment') {
        await items.increment(target.uid, 'likes', rng.int(1, 5))
      } else if (kind === 'delete') {
        if (!(await items.delete(target.uid))) return 'skipped'
      } else {
        const patch: Record<string, unknown> = rng.chance(0.5)
          ? { done: rng.chance(0.5) }
          : { note: `${this.name}:${rng.int(0, 9999)}` }
        if (target.owner === this.index && rng.chance(0.3)) patch.title = `${this.name}-t${rng.int(0, 9999)}`
        await items.update(target.uid, patch)
      }
      return kind
    } catch (error) {
      // The record went away between the check and the write (deleted by a sync): nothing queued.
      if ((error as { code?: string }).code === 'CLIENT_NOT_FOUND') return 'skipped'
      throw error
    }
  }

  status(): SyncStatus {
    return this.client.status
  }

  /** Resolves once `predicate` holds for the client's status (status$), or rejects after `timeoutMs`. */
  waitStatus(predicate: (status: SyncStatus) => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        subscription.unsubscribe()
        reject(
          new Error(
            `${this.name}: ${what} not reached in ${timeoutMs} ms; status ${describe(this.status())}`,
          ),
        )
      }, timeoutMs)
      const subscription = this.client.status$.subscribe((status) => {
        if (settled || !predicate(status)) return
        settled = true
        clearTimeout(timer)
        queueMicrotask(() => subscription.unsubscribe())
        resolve()
      })
    })
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined)
    this.socket.disconnect()
  }
}

export function describe(status: SyncStatus): string {
  return JSON.stringify({
    online: status.online,
    syncing: status.syncing,
    pending: status.pending,
    error: status.error ? `${status.error.code}: ${status.error.message}` : null,
  })
}

/** Online, not syncing, nothing pending. */
export const idle = (status: SyncStatus) => status.online && !status.syncing && status.pending === 0
