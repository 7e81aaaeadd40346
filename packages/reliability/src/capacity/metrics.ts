import { Latencies, type LatencySummary } from './latency.js'

/**
 * What the protocol-level clients measured in one window (a run, or one step of a ramp).
 * Latencies are "from the scheduled send time" (open loop: a request that waited in the
 * client's queue because earlier ones were slow counts that wait) and "from the actual send".
 */
export class LoadMetrics {
  readonly pushAck = new Latencies()
  readonly pushService = new Latencies()
  readonly pullAck = new Latencies()
  readonly pullService = new Latencies()
  pushesScheduled = 0
  pushesSent = 0
  pushesOk = 0
  changesOk = 0
  pullsScheduled = 0
  pullsOk = 0
  readonly errors = new Map<string, number>()
  /** performance.now() of the first scheduled request and of the last answer. */
  startedAt = 0
  lastAnswerAt = 0
  /** When scheduling stopped (the end of the offered window). */
  stoppedAt = 0

  error(kind: 'push' | 'pull', code: string): void {
    const key = `${kind}:${code}`
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1)
  }

  summary(): LoadSummary {
    const offeredMs = Math.max(1, this.stoppedAt - this.startedAt)
    const answeredMs = Math.max(offeredMs, this.lastAnswerAt - this.startedAt)
    const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000 * 10) / 10
    return {
      offeredSeconds: Math.round(offeredMs / 100) / 10,
      pushesScheduled: this.pushesScheduled,
      pushesSent: this.pushesSent,
      pushesAcknowledged: this.pushesOk,
      changesAcknowledged: this.changesOk,
      pushesOfferedPerSecond: perSecond(this.pushesScheduled, offeredMs),
      pushesAchievedPerSecond: perSecond(this.pushesOk, answeredMs),
      changesAchievedPerSecond: perSecond(this.changesOk, answeredMs),
      pushAckMs: this.pushAck.summary(),
      pushServiceMs: this.pushService.summary(),
      pullsScheduled: this.pullsScheduled,
      pullsOk: this.pullsOk,
      pullAckMs: this.pullAck.summary(),
      errors: Object.fromEntries(this.errors),
    }
  }
}

export interface LoadSummary {
  offeredSeconds: number
  pushesScheduled: number
  pushesSent: number
  pushesAcknowledged: number
  changesAcknowledged: number
  pushesOfferedPerSecond: number
  /** Acknowledged pushes / (last answer - first scheduled send): what the servers held. */
  pushesAchievedPerSecond: number
  changesAchievedPerSecond: number
  /** Scheduled send -> acknowledgement (includes waiting in the client's queue). */
  pushAckMs: LatencySummary
  /** Actual send -> acknowledgement. */
  pushServiceMs: LatencySummary
  pullsScheduled: number
  pullsOk: number
  pullAckMs: LatencySummary
  /** Error answers, timeouts and lost connections by request kind and code. */
  errors: Record<string, number>
}
