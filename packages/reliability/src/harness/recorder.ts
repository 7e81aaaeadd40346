import type { Change, ChangesPush, PushResult, Reply } from '@tidesync/server/protocol'

/** One change as a client pushed it (the first time; retries must carry the same content). */
export interface PushedChange {
  id: string
  client: number
  uid: string
  op: Change['op']
  clock: string
  fields: Record<string, unknown>
  deltas: Record<string, number>
  content: string
  firstSentAt: number
  /** The connection (per client, counted from 1) the change was first sent on. */
  firstSession: number
  /** Written while its client was connected (so its latencies measure the system, not an offline spell). */
  writtenOnline: boolean
  sends: number
}

export interface AckRecord {
  status: 'applied' | 'duplicate' | 'rejected'
  at: number
  code?: string
}

/** The wall-clock part of an HLC, in ms. */
export function hlcWall(clock: string): number {
  return Date.parse(clock.slice(0, 24))
}

/**
 * Everything the simulated clients sent and were told, recorded on their own sockets: each
 * pushed change (with its clock), each outcome the server acknowledged, live pushes received.
 * From this the test computes what the end state must be and the latencies it reports.
 */
export class Recorder {
  readonly changes = new Map<string, PushedChange>()
  /** The first outcome per change id (a later retry may only say 'duplicate'). */
  readonly acks = new Map<string, AckRecord>()
  /** Change ids pushed again with a different content (must never happen). */
  readonly contentMismatches: string[] = []
  /** Push replies that were errors, by code. */
  readonly pushErrors = new Map<string, number>()
  /** Write -> server acknowledgement, for writes made and acknowledged in one connection (ms). */
  readonly pushLatencies: number[] = []
  /** Write on a connected client -> live push received by another that was connected all along (ms). */
  readonly propagationLatencies: number[] = []
  private readonly byClock = new Map<string, string>()
  private readonly seen = new Set<string>()
  /** When each client's current connection started (0 while disconnected). */
  readonly connectedSince: number[] = []
  /** Connections made so far, per client. */
  readonly sessions: number[] = []
  /** 'duplicate' answers for a change first sent on the same connection (a resend without a drop). */
  duplicatesWithoutReconnect = 0

  connected(client: number, at: number): void {
    this.connectedSince[client] = at
    this.sessions[client] = (this.sessions[client] ?? 0) + 1
    const dropped = this.droppedAt[client]
    if (dropped) {
      this.reconnectDurations.push(at - dropped)
      this.droppedAt[client] = 0
    }
  }

  /** Pushes sent and not answered yet, per client (reset when the connection drops). */
  readonly inFlight: number[] = []
  /** How long each involuntary disconnect (not `goOffline`) lasted until the next connect, in ms. */
  readonly reconnectDurations: number[] = []
  private readonly droppedAt: number[] = []

  disconnected(client: number, reason: string, at: number): void {
    this.connectedSince[client] = 0
    this.inFlight[client] = 0
    if (reason !== 'io client disconnect') this.droppedAt[client] = at
  }

  /** Pushes in flight over every client. */
  pushesInFlight(): number {
    return this.inFlight.reduce((sum, n) => sum + (n ?? 0), 0)
  }

  /** Records a push (its answer goes to `answered`). */
  pushed(client: number, changes: Change[], at: number): void {
    this.inFlight[client] = (this.inFlight[client] ?? 0) + 1
    for (const change of changes) {
      const fields =
        change.op === 'create'
          ? change.data
          : change.op === 'update'
            ? change.patch
            : ({} as Record<string, unknown>)
      const deltas = change.op === 'increment' ? change.deltas : {}
      const content = JSON.stringify([change.uid, change.op, change.clock, fields, deltas])
      const known = this.changes.get(change.id)
      if (known) {
        known.sends++
        if (known.content !== content) this.contentMismatches.push(change.id)
        continue
      }
      this.changes.set(change.id, {
        id: change.id,
        client,
        uid: change.uid,
        op: change.op,
        clock: change.clock,
        fields: { ...fields },
        deltas: { ...deltas },
        content,
        firstSentAt: at,
        firstSession: this.sessions[client] ?? 0,
        writtenOnline:
          (this.connectedSince[client] ?? 0) > 0 &&
          hlcWall(change.clock) >= (this.connectedSince[client] ?? 0),
        sends: 1,
      })
      this.byClock.set(change.clock, change.id)
    }
  }

  answered(client: number, reply: Reply<PushResult> | undefined, at: number): void {
    this.inFlight[client] = Math.max(0, (this.inFlight[client] ?? 0) - 1)
    if (!reply || reply.error || !reply.result) {
      const code = reply?.error?.code ?? 'NO_REPLY'
      this.pushErrors.set(code, (this.pushErrors.get(code) ?? 0) + 1)
      return
    }
    for (const outcome of reply.result.outcomes) {
      if (this.acks.has(outcome.id)) continue
      this.acks.set(outcome.id, {
        status: outcome.status,
        at,
        code: outcome.status === 'rejected' ? outcome.error.code : undefined,
      })
      const change = this.changes.get(outcome.id)
      if (change && outcome.status === 'duplicate' && change.firstSession === (this.sessions[client] ?? 0)) {
        this.duplicatesWithoutReconnect++
      }
      const since = this.connectedSince[client] ?? 0
      if (change && outcome.status !== 'rejected' && since > 0 && hlcWall(change.clock) >= since) {
        this.pushLatencies.push(at - hlcWall(change.clock))
      }
    }
  }

  live(client: number, push: ChangesPush, at: number): void {
    const since = this.connectedSince[client] ?? 0
    if (since === 0) return
    for (const upsert of push.upserts) {
      for (const clock of Object.values(upsert.meta.clocks ?? {})) {
        const id = this.byClock.get(clock)
        const change = id ? this.changes.get(id) : undefined
        if (!change || change.client === client || !change.writtenOnline) continue
        const key = `${client}:${change.id}`
        if (this.seen.has(key)) continue
        this.seen.add(key)
        if (hlcWall(change.clock) >= since) this.propagationLatencies.push(at - hlcWall(change.clock))
      }
    }
  }
}

/** Max and 95th percentile of a list of latencies (0 when empty). */
export function summarize(values: number[]): { count: number; max: number; p95: number; p50: number } {
  if (values.length === 0) return { count: 0, max: 0, p95: 0, p50: 0 }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
  return { count: values.length, max: sorted[sorted.length - 1] as number, p95: at(0.95), p50: at(0.5) }
}
