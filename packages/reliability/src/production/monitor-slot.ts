/**
 * Capacity's `ResourceMonitor` through faults: a restarted Redis has a new pid and a restarted
 * PostgreSQL dropped the monitor's connections, so after such a fault the monitor is replaced by
 * a new one. The figures the old one took in the window under way are kept and merged with the
 * new one's at the end of the window (weighted by the time each covered). Calls are serialised.
 */
import {
  ResourceMonitor,
  type ResourceMonitorOptions,
  type WindowFigures,
} from '../capacity/resource-monitor.js'

export class MonitorSlot {
  private current: ResourceMonitor | undefined
  /** What the replaced monitor measured in the window under way. */
  private carried: WindowFigures | null = null
  private chain: Promise<unknown> = Promise.resolve()
  readonly notes = new Set<string>()

  constructor(private readonly options: ResourceMonitorOptions) {}

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.chain.then(task, task)
    this.chain = next.catch(() => undefined)
    return next
  }

  private async open(): Promise<void> {
    const monitor = new ResourceMonitor(this.options)
    await monitor.start()
    // The first monitor's notes say what is measured; a replacement's would repeat them.
    if (this.notes.size === 0) for (const note of monitor.notes) this.notes.add(note)
    this.current = monitor
  }

  start(): Promise<void> {
    return this.serial(() => this.open())
  }

  /** The figures since the last window (across a restart in between). */
  window(): Promise<WindowFigures | null> {
    return this.serial(async () => {
      const figures = this.current ? await this.current.window() : null
      const carried = this.carried
      this.carried = null
      return carried && figures ? mergeFigures(carried, figures) : (figures ?? carried)
    })
  }

  /** Replaces the monitor by a fresh one (after Redis or PostgreSQL restarted). */
  restart(): Promise<void> {
    return this.serial(async () => {
      const old = this.current
      this.current = undefined
      if (old) {
        const figures = await old.window().catch(() => null)
        if (figures) this.carried = this.carried ? mergeFigures(this.carried, figures) : figures
        await old.stop().catch(() => undefined)
      }
      await this.open()
    })
  }

  stop(): Promise<void> {
    return this.serial(async () => {
      const monitor = this.current
      this.current = undefined
      await monitor?.stop()
    })
  }
}

/** Two consecutive windows as one: CPU shares weighted by the time each covered, peaks kept. */
export function mergeFigures(a: WindowFigures, b: WindowFigures): WindowFigures {
  const wallMs = a.wallMs + b.wallMs
  const weigh = (x: number | null, y: number | null): number | null => {
    if (x === null && y === null) return null
    if (x === null) return y
    if (y === null) return x
    return Math.round(((x * a.wallMs + y * b.wallMs) / Math.max(1, wallMs)) * 10) / 10
  }
  const names = new Set([...Object.keys(a.cpuPercent.servers), ...Object.keys(b.cpuPercent.servers)])
  const servers: Record<string, number | null> = {}
  for (const name of names)
    servers[name] = weigh(a.cpuPercent.servers[name] ?? null, b.cpuPercent.servers[name] ?? null)
  const peak = (x: Record<string, number | null>, y: Record<string, number | null>) => {
    const out: Record<string, number | null> = {}
    for (const name of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const values = [x[name], y[name]].filter((v): v is number => typeof v === 'number')
      out[name] = values.length > 0 ? Math.max(...values) : null
    }
    return out
  }
  const waits = (() => {
    const [x, y] = [a.postgresWaits, b.postgresWaits]
    if (!x || !y) return x ?? y
    const samples = x.samples + y.samples
    const states: Record<string, number> = {}
    for (const [state, share] of Object.entries(x.states)) states[state] = share * x.samples
    for (const [state, share] of Object.entries(y.states))
      states[state] = (states[state] ?? 0) + share * y.samples
    return {
      samples,
      averageBackends:
        Math.round(
          ((x.averageBackends * x.samples + y.averageBackends * y.samples) / Math.max(1, samples)) * 10,
        ) / 10,
      states: Object.fromEntries(
        Object.entries(states)
          .sort((p, q) => q[1] - p[1])
          .map(([state, sum]) => [state, Math.round((sum / Math.max(1, samples)) * 10) / 10]),
      ),
    }
  })()
  return {
    wallMs,
    cpuPercent: {
      servers,
      serversTotal: weigh(a.cpuPercent.serversTotal, b.cpuPercent.serversTotal),
      postgres: weigh(a.cpuPercent.postgres, b.cpuPercent.postgres),
      postgresShared: weigh(a.cpuPercent.postgresShared, b.cpuPercent.postgresShared),
      redis: weigh(a.cpuPercent.redis, b.cpuPercent.redis),
      generator: weigh(a.cpuPercent.generator, b.cpuPercent.generator) ?? 0,
      machine: weigh(a.cpuPercent.machine, b.cpuPercent.machine),
    },
    rssPeak: peak(a.rssPeak, b.rssPeak),
    rssLast: { ...a.rssLast, ...b.rssLast },
    postgresWaits: waits,
    generatorLoopDelayMs: {
      p50: weigh(a.generatorLoopDelayMs.p50, b.generatorLoopDelayMs.p50) ?? 0,
      p99: Math.max(a.generatorLoopDelayMs.p99, b.generatorLoopDelayMs.p99),
      max: Math.max(a.generatorLoopDelayMs.max, b.generatorLoopDelayMs.max),
    },
    notes: [...new Set([...a.notes, ...b.notes])],
  }
}
