/**
 * A protocol-level client: one socket.io-client connection speaking the wire protocol
 * (PROTOCOL.md) directly, with its own `clientId`, HLC and user (so its scope differs from the
 * others'). No local database: it keeps the uids of its acknowledged creates, builds changes
 * when it sends them, and reports every outcome to the ledger. Requests wait in a local queue
 * while `maxInFlight` of them are unanswered (the server queues at most 72 per socket and counts
 * more as violations); the queue time is part of the measured latency (open loop).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import {
  type Change,
  type ChangesPush,
  type ClientToServerEvents,
  ERROR_CODES,
  HybridClock,
  isErrorCode,
  type PullResult,
  type PushResult,
  type Reply,
  type ServerToClientEvents,
  type SubscribeResult,
} from '@tidesync/server/protocol'
import { io, type Socket } from 'socket.io-client'
import { Prng } from '../harness/prng.js'
import type { Ledger } from './ledger.js'
import type { LoadMetrics } from './metrics.js'

export type ProtocolSocket = Socket<ServerToClientEvents, ClientToServerEvents>

export interface LoadClientOptions {
  index: number
  /** A server's URL (the generator spreads its clients over the servers itself). */
  url: string
  /** The handshake's `auth`: the user and the group whose records it also sees. */
  user: string
  group: string
  /** The owner of the records it creates (its user, or its group for fan-out drivers). */
  owner: string
  ledger: Ledger
  /** Requests unanswered at once; more wait in the client. @default 8 */
  maxInFlight?: number
  /** A request unanswered after this fails as TIMEOUT. @default 30000 */
  ackTimeoutMs?: number
  seed: number
  /**
   * Send a push again, with the same changes, when it fails for a reason that may pass: its
   * connection was lost, it timed out, or the answer is a retryable error (`UNAVAILABLE`,
   * `TOO_MANY_REQUESTS`), as a real client's outbox does; the change ids make a second copy safe
   * (what was applied answers `duplicate`). The copy goes out after `delayMs` (doubled per
   * attempt, at most `maxDelayMs`) once the socket is connected, ahead of the queued requests;
   * its latency still counts from the first scheduled send. Each failed attempt is counted as
   * an error by its code (a lost connection as `DISCONNECTED`).
   * @default undefined: a failed push is not sent again (its changes count as unresolved)
   */
  resend?: { delayMs: number; maxDelayMs: number }
}

/** A push job; `changes` and `attempt` are set on a copy being sent again. */
type PushJob = {
  kind: 'push'
  size: number
  at: number
  metrics: LoadMetrics
  changes?: Change[]
  attempt?: number
}

type Job =
  | PushJob
  | { kind: 'pull'; at: number; metrics: LoadMetrics }
  | { kind: 'set'; uid: string; note: string; at: number; done: (ok: boolean, at: number) => void }

/** Opens a socket with `auth` and waits for it to connect (rejects on connect_error/timeout). */
export function connectSocket(
  url: string,
  auth: Record<string, unknown>,
  timeoutMs = 20_000,
): Promise<ProtocolSocket> {
  const socket: ProtocolSocket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    auth,
    reconnectionDelay: 250,
    reconnectionDelayMax: 2000,
    timeout: timeoutMs,
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`no connection to ${url} within ${timeoutMs} ms`)),
      timeoutMs,
    )
    const fail = (error: Error) => {
      clearTimeout(timer)
      socket.off('connect', ok)
      socket.disconnect()
      reject(error)
    }
    const ok = () => {
      clearTimeout(timer)
      socket.off('connect_error', fail)
      resolve(socket)
    }
    socket.once('connect', ok)
    socket.once('connect_error', fail)
  })
}

/** Subscribes `socket` to every item of its scope. */
export function subscribeItems(socket: ProtocolSocket, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    socket
      .timeout(timeoutMs)
      .emit(
        'subscribe',
        { model: 'items', where: {} },
        (err: Error | null, reply: Reply<SubscribeResult>) => {
          if (err) reject(err)
          else if (reply.error) reject(new Error(`subscribe: ${reply.error.code} ${reply.error.message}`))
          else resolve(reply.result.subscriptionId)
        },
      )
  })
}

export class LoadClient {
  readonly clientId: string
  private socket: ProtocolSocket | undefined
  private readonly clock: HybridClock
  private readonly rng: Prng
  private readonly known: string[] = []
  private readonly queue: Job[] = []
  private inFlight = 0
  private nextChange = 0
  private checkpoint = '0'
  private subscribed = false
  private closed = false
  /** Pushes sent and not answered, by a sequence number (their changes are unresolved on close). */
  private readonly open = new Map<number, Change[]>()
  private nextPush = 0
  /** Failed pushes waiting to be sent again (`resend`), with their timers. */
  private readonly retrying = new Map<PushJob, NodeJS.Timeout | undefined>()
  /** Live `changes` messages received (its own writes echoed by its subscription). */
  liveMessages = 0
  disconnects = 0
  /** Pushes sent again after a failure (`resend`). */
  resends = 0

  constructor(private readonly options: LoadClientOptions) {
    const suffix = randomBytes(3).toString('hex')
    this.clientId = `lg${options.index}-${suffix}`
    this.clock = new HybridClock(`lg${options.index}_${suffix}`, Date.now)
    this.rng = new Prng(options.seed * 100_003 + options.index)
  }

  get user(): string {
    return this.options.user
  }

  /** Requests waiting in this client plus requests unanswered (and pushes waiting to be resent). */
  get backlog(): number {
    return this.queue.length + this.inFlight + this.retrying.size
  }

  async connect(): Promise<void> {
    const socket = await connectSocket(this.options.url, {
      user: this.options.user,
      group: this.options.group,
    })
    this.socket = socket
    socket.on('changes', (_push: ChangesPush) => {
      this.liveMessages++
    })
    socket.on('disconnect', () => {
      if (!this.closed) this.disconnects++
    })
    // After a reconnect, subscriptions are gone: subscribe again (best effort).
    socket.io.on('reconnect', () => {
      if (this.subscribed) void subscribeItems(socket).catch(() => undefined)
    })
  }

  async subscribe(): Promise<void> {
    await subscribeItems(this.requireSocket())
    this.subscribed = true
  }

  private requireSocket(): ProtocolSocket {
    if (!this.socket) throw new Error(`${this.clientId} is not connected`)
    return this.socket
  }

  /** Creates one record now and waits for its acknowledgement (set-up before any load). */
  async createNow(title: string): Promise<string> {
    const uid = randomUUID()
    const change: Change = {
      id: `${this.nextChange++}`,
      model: 'items',
      uid,
      op: 'create',
      data: { owner: this.options.owner, title, note: '', done: false },
      clock: this.clock.now(),
    }
    const reply = await new Promise<Reply<PushResult>>((resolve, reject) =>
      this.requireSocket()
        .timeout(this.options.ackTimeoutMs ?? 30_000)
        .emit(
          'sync:push',
          { clientId: this.clientId, changes: [change] },
          (err: Error | null, r: Reply<PushResult>) => (err ? reject(err) : resolve(r)),
        ),
    )
    const outcome = reply.result?.outcomes[0]
    this.options.ledger.settle(this.clientId, change, outcome)
    if (outcome?.status !== 'applied')
      throw new Error(`create failed: ${JSON.stringify(reply.error ?? outcome)}`)
    this.known.push(uid)
    return uid
  }

  /** Queues a push of `size` changes, scheduled at `at` (performance.now()). */
  push(size: number, at: number, metrics: LoadMetrics): void {
    metrics.pushesScheduled++
    this.enqueue({ kind: 'push', size, at, metrics })
  }

  pull(at: number, metrics: LoadMetrics): void {
    metrics.pullsScheduled++
    this.enqueue({ kind: 'pull', at, metrics })
  }

  /** Queues an update of `note` on `uid` (fan-out drivers); `done` gets the acknowledgement time. */
  setNote(uid: string, note: string, at: number, done: (ok: boolean, at: number) => void): void {
    this.enqueue({ kind: 'set', uid, note, at, done })
  }

  private enqueue(job: Job): void {
    this.queue.push(job)
    this.pump()
  }

  private pump(): void {
    const max = this.options.maxInFlight ?? 8
    while (this.inFlight < max && this.queue.length > 0 && !this.closed) {
      const job = this.queue.shift()!
      this.inFlight++
      this.send(job)
    }
  }

  private finish(): void {
    this.inFlight--
    this.pump()
  }

  private change(): Change {
    const id = `${this.nextChange++}`
    const clock = this.clock.now()
    const roll = this.rng.next()
    if (this.known.length === 0 || roll < 0.3) {
      const uid = randomUUID()
      return {
        id,
        model: 'items',
        uid,
        op: 'create',
        data: { owner: this.options.owner, title: `${this.options.user}-${id}`, note: '', done: false },
        clock,
      }
    }
    const uid = this.rng.pick(this.known)
    if (roll < 0.7) {
      const patch: Record<string, string | boolean> = this.rng.chance(0.5)
        ? { note: `n${this.rng.int(0, 1e6)}` }
        : { done: this.rng.chance(0.5) }
      return { id, model: 'items', uid, op: 'update', patch, clock }
    }
    return { id, model: 'items', uid, op: 'increment', deltas: { likes: this.rng.int(1, 5) }, clock }
  }

  private send(job: Job): void {
    const socket = this.requireSocket()
    const sentAt = performance.now()
    const timeout = this.options.ackTimeoutMs ?? 30_000
    if (job.kind === 'pull') {
      const { metrics } = job
      socket
        .timeout(timeout)
        .emit(
          'sync:pull',
          { model: 'items', where: {}, checkpoint: this.checkpoint, limit: 200 },
          (err: Error | null, reply: Reply<PullResult>) => {
            const at = performance.now()
            metrics.lastAnswerAt = Math.max(metrics.lastAnswerAt, at)
            if (err || reply.error) metrics.error('pull', err ? 'TIMEOUT' : reply.error!.code)
            else {
              this.checkpoint = reply.result.checkpoint
              metrics.pullsOk++
              metrics.pullAck.add(at - job.at)
              metrics.pullService.add(at - sentAt)
            }
            this.finish()
          },
        )
      return
    }
    const changes: Change[] =
      job.kind === 'set'
        ? [
            {
              id: `${this.nextChange++}`,
              model: 'items',
              uid: job.uid,
              op: 'update',
              patch: { note: job.note },
              clock: this.clock.now(),
            },
          ]
        : (job.changes ?? Array.from({ length: job.size }, () => this.change()))
    if (job.kind === 'push') job.metrics.pushesSent++
    const pushNo = this.nextPush++
    this.open.set(pushNo, changes)
    socket
      .timeout(timeout)
      .emit(
        'sync:push',
        { clientId: this.clientId, changes },
        (err: Error | null, reply: Reply<PushResult>) => {
          // Closed meanwhile: its changes were already counted as unresolved.
          if (!this.open.delete(pushNo)) return
          const at = performance.now()
          const ok = !err && !reply.error
          if (!ok && job.kind === 'push' && this.resendLater(job, changes, err, reply)) {
            this.finish()
            return
          }
          if (ok) this.clock.observe(reply.result.serverClock)
          changes.forEach((change, i) => {
            const outcome = ok ? reply.result!.outcomes[i] : undefined
            this.options.ledger.settle(this.clientId, change, outcome)
            if (change.op === 'create' && outcome?.status === 'applied') this.known.push(change.uid)
          })
          if (job.kind === 'set') job.done(ok && reply.result!.outcomes[0]?.status === 'applied', at)
          else {
            const { metrics } = job
            metrics.lastAnswerAt = Math.max(metrics.lastAnswerAt, at)
            if (!ok) metrics.error('push', err ? 'TIMEOUT' : reply.error!.code)
            else {
              metrics.pushesOk++
              metrics.changesOk += reply.result!.outcomes.filter((o) => o.status !== 'rejected').length
              metrics.pushAck.add(at - job.at)
              metrics.pushService.add(at - sentAt)
            }
          }
          this.finish()
        },
      )
  }

  /**
   * With `resend`: schedules a copy of a failed push and returns true; false when the failure
   * is final (no `resend`, a non-retryable error answer, or the client is closing).
   */
  private resendLater(
    job: PushJob,
    changes: Change[],
    err: Error | null,
    reply: Reply<PushResult> | undefined,
  ): boolean {
    const resend = this.options.resend
    if (!resend || this.closed) return false
    const error = err ? null : (reply?.error ?? null)
    if (error && error.retryable !== true && !(isErrorCode(error.code) && ERROR_CODES[error.code].retryable))
      return false
    const code = err ? (/disconnected/.test(err.message) ? 'DISCONNECTED' : 'TIMEOUT') : error!.code
    job.metrics.error('push', code)
    const copy: PushJob = { ...job, changes, attempt: (job.attempt ?? 0) + 1 }
    const delay = Math.min(resend.maxDelayMs, resend.delayMs * 2 ** (copy.attempt! - 1))
    const requeue = () => {
      if (this.closed || !this.retrying.has(copy)) return
      this.retrying.delete(copy)
      this.resends++
      this.queue.unshift(copy)
      this.pump()
    }
    this.retrying.set(
      copy,
      setTimeout(() => {
        this.retrying.set(copy, undefined)
        const socket = this.requireSocket()
        if (socket.connected) requeue()
        else socket.once('connect', requeue)
      }, delay),
    )
    return true
  }

  /** The changes of pushes waiting to be sent again count as unresolved (they may be applied). */
  private failRetrying(): void {
    for (const [copy, timer] of this.retrying) {
      clearTimeout(timer)
      for (const change of copy.changes ?? []) this.options.ledger.fail(change)
    }
    this.retrying.clear()
  }

  /** Requests that were still queued (never sent) are dropped and returned. */
  dropQueued(): number {
    const dropped = this.queue.length
    for (const job of this.queue)
      if (job.kind === 'push') for (const change of job.changes ?? []) this.options.ledger.fail(change)
    this.queue.length = 0
    return dropped
  }

  /** Stops: queued requests are dropped, the changes of unanswered pushes count as unresolved. */
  close(): void {
    this.closed = true
    this.dropQueued()
    this.failRetrying()
    for (const changes of this.open.values()) for (const change of changes) this.options.ledger.fail(change)
    this.open.clear()
    this.socket?.disconnect()
  }
}
