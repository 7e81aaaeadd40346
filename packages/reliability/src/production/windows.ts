/**
 * The production soak's figures per reporting window (10 s by default): changes offered (by
 * their scheduled send time), changes acknowledged and push acknowledgements (by the time the
 * answer arrived), ack latency, errors by code, the generator's backlog, and the CPU of every
 * process in the window. Answers arriving after the offered load land in a last "drain" window.
 *
 * The protocol-level clients report into capacity's `LoadMetrics` and `Ledger`: `RunMetrics`
 * (one for the whole run) routes each latency and error to the window it arrives in, and
 * `WindowedLedger` counts each acknowledged change in its window.
 */
import type { Change, ChangeOutcome } from '@tidesync/server/protocol'
import { Latencies, type LatencySummary } from '../capacity/latency.js'
import { Ledger } from '../capacity/ledger.js'
import { LoadMetrics } from '../capacity/metrics.js'
import type { WindowFigures } from '../capacity/resource-monitor.js'

export interface Window {
  index: number
  /** Seconds since the load started. */
  fromS: number
  toS: number
  offeredChanges: number
  offeredPushes: number
  ackedChanges: number
  pushAck: Latencies
  errors: Map<string, number>
  /** Most pushes waiting at once in the generator (queued, unanswered or waiting to be resent). */
  backlogMax: number
  /** Faults under way during the window. */
  faults: Set<string>
  cpu: WindowFigures | null
}

export interface WindowReport {
  window: string
  fromS: number
  toS: number
  offeredChangesPerSecond: number
  achievedChangesPerSecond: number
  changesAcknowledged: number
  pushesAcknowledged: number
  /** Scheduled send -> acknowledgement of the pushes answered in the window (resends included). */
  ackMs: Pick<LatencySummary, 'p50' | 'p99' | 'max'>
  errors: Record<string, number>
  backlogMax: number
  faults: string[]
  cpuPercent: WindowFigures['cpuPercent'] | null
  /** The time the CPU figures cover (about the window; a little less around a monitor restart). */
  cpuWallMs: number | null
  postgresBusiest: Record<string, number> | null
  generatorLoopDelayMaxMs: number | null
}

export class Windows {
  readonly list: Window[]
  /** performance.now() of the first scheduled push; NaN until `begin`. */
  private start = Number.NaN

  constructor(
    readonly windowMs: number,
    readonly durationMs: number,
  ) {
    const count = Math.ceil(durationMs / windowMs)
    this.list = Array.from({ length: count + 1 }, (_, index) => ({
      index,
      fromS: (index * windowMs) / 1000,
      toS: index < count ? Math.min(durationMs, (index + 1) * windowMs) / 1000 : Number.NaN,
      offeredChanges: 0,
      offeredPushes: 0,
      ackedChanges: 0,
      pushAck: new Latencies(),
      errors: new Map(),
      backlogMax: 0,
      faults: new Set(),
      cpu: null,
    }))
  }

  begin(at: number): void {
    this.start = at
  }

  get startedAt(): number {
    return this.start
  }

  get begun(): boolean {
    return !Number.isNaN(this.start)
  }

  /** Seconds since the start of the load (performance.now() scale in, seconds out). */
  seconds(at = performance.now()): number {
    return (at - this.start) / 1000
  }

  /** The window of time `at` (the last one for anything after the offered load). */
  at(at = performance.now()): Window {
    const index = Number.isNaN(this.start) ? 0 : Math.floor((at - this.start) / this.windowMs)
    return this.list[Math.max(0, Math.min(this.list.length - 1, index))]!
  }

  /** The window of a push scheduled at `at` (one due at the very end belongs to the last one). */
  offeredAt(at: number): Window {
    return this.list[Math.min(this.list.length - 2, this.at(at).index)]!
  }

  get drain(): Window {
    return this.list[this.list.length - 1]!
  }

  report(window: Window, drainEndS: number): WindowReport {
    const toS = Number.isNaN(window.toS) ? drainEndS : window.toS
    const seconds = Math.max(0.001, toS - window.fromS)
    const per = (n: number) => Math.round((n / seconds) * 10) / 10
    const ack = window.pushAck.summary()
    const cpu = window.cpu
    return {
      window: window === this.drain ? 'drain' : `${window.fromS}-${window.toS} s`,
      fromS: window.fromS,
      toS: Math.round(toS * 10) / 10,
      offeredChangesPerSecond: per(window.offeredChanges),
      achievedChangesPerSecond: per(window.ackedChanges),
      changesAcknowledged: window.ackedChanges,
      pushesAcknowledged: ack.count,
      ackMs: { p50: ack.p50, p99: ack.p99, max: ack.max },
      errors: Object.fromEntries(window.errors),
      backlogMax: window.backlogMax,
      faults: [...window.faults],
      cpuPercent: cpu?.cpuPercent ?? null,
      cpuWallMs: cpu?.wallMs ?? null,
      postgresBusiest: cpu?.postgresWaits
        ? Object.fromEntries(Object.entries(cpu.postgresWaits.states).slice(0, 3))
        : null,
      generatorLoopDelayMaxMs: cpu?.generatorLoopDelayMs.max ?? null,
    }
  }
}

/** A latency list that also adds each sample to the window it arrives in. */
class RoutedLatencies extends Latencies {
  constructor(private readonly route: (ms: number) => void) {
    super()
  }

  override add(ms: number): void {
    super.add(ms)
    this.route(ms)
  }
}

/**
 * The load's metrics for the whole run (what the protocol clients report into), routing each
 * push acknowledgement latency and each error to the window it arrives in.
 */
export class RunMetrics extends LoadMetrics {
  constructor(private readonly windows: Windows) {
    super()
    // LoadMetrics' latency lists are plain fields: swap in one that also feeds the windows.
    Object.assign(this, { pushAck: new RoutedLatencies((ms) => windows.at().pushAck.add(ms)) })
  }

  override error(kind: 'push' | 'pull', code: string): void {
    super.error(kind, code)
    const errors = this.windows.at().errors
    const key = `${kind}:${code}`
    errors.set(key, (errors.get(key) ?? 0) + 1)
  }
}

/** The capacity ledger, also counting each acknowledged change in the window it arrives in. */
export class WindowedLedger extends Ledger {
  constructor(private readonly windows: Windows) {
    super()
  }

  override settle(clientId: string, change: Change, outcome: ChangeOutcome | undefined): void {
    super.settle(clientId, change, outcome)
    // Before the measured load (the warm-up) nothing is counted in a window.
    if (this.windows.begun && outcome && outcome.id === change.id && outcome.status !== 'rejected')
      this.windows.at().ackedChanges++
  }
}
