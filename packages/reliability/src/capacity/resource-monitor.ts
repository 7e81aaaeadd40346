/**
 * Samples the CPU and memory of every process a capacity run depends on, once a second and at
 * each phase boundary: the tidesync server processes (by pid), PostgreSQL (the backends of the
 * run's database, and the shared background processes: walwriter, checkpointer...), Redis (by
 * the pid listening on its port) and the load generator itself (this process, with its event
 * loop delay: a saturated generator sends late, which the latencies then include).
 *
 * A PostgreSQL backend or server first seen after the monitor started counts from zero (it was
 * born during the run); one that exits between two samples loses at most its last second.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { type PgWaitFigures, PgWaitSampler } from './pg-waits.js'
import { cpuMs, machineCpuMs, pidListeningOn, pidNamed, rssBytes } from './proc-stats.js'

export interface MonitoredServer {
  name: string
  pid: () => number | undefined
}

export interface ResourceMonitorOptions {
  servers: MonitoredServer[]
  /** The run's database (its backends are "postgres"; other databases' are not counted). */
  databaseUrl: string
  redisUrl: string
  /** @default 1000 */
  intervalMs?: number
}

/** CPU used in a window, as a percentage of one core (200 = two cores busy). */
export interface WindowFigures {
  wallMs: number
  cpuPercent: {
    servers: Record<string, number | null>
    serversTotal: number | null
    /** The backends of the run's database. */
    postgres: number | null
    /** walwriter, checkpointer, background writer... shared with every database on the server. */
    postgresShared: number | null
    /** The whole Redis process (shared with anything else using it). */
    redis: number | null
    generator: number
    /**
     * The whole machine (every process, every core: 200 = two cores busy). What the run's
     * processes above do not account for is other work sharing the machine.
     */
    machine: number | null
  }
  /** Largest and last resident memory per server in the window, bytes. */
  rssPeak: Record<string, number | null>
  rssLast: Record<string, number | null>
  /** What the run's PostgreSQL backends were doing (null: not readable). */
  postgresWaits: PgWaitFigures | null
  /** The generator's event loop delay in the window (ms). */
  generatorLoopDelayMs: { p50: number; p99: number; max: number }
  notes: string[]
}

type Category = string

export class ResourceMonitor {
  private readonly lastCpu = new Map<string, number>()
  private readonly totals = new Map<Category, number>()
  private readonly unreadable = new Set<Category>()
  private readonly rssPeak = new Map<string, number>()
  private readonly rssLast = new Map<string, number>()
  private readonly loop = monitorEventLoopDelay({ resolution: 10 })
  private timer: NodeJS.Timeout | undefined
  private pgClient: pg.Client | undefined
  /** Our own monitoring backends (not counted as the run's). */
  private readonly ownPids: number[] = []
  private waits: PgWaitSampler | undefined
  private waitClient: pg.Client | undefined
  private redisPid: number | undefined
  private windowStart = 0
  private windowTotals = new Map<Category, number>()
  private generatorStart = process.cpuUsage()
  private machineStart = machineCpuMs()
  private sampling: Promise<void> = Promise.resolve()
  readonly notes: string[] = []

  constructor(private readonly options: ResourceMonitorOptions) {}

  async start(): Promise<void> {
    const redisPort = Number(new URL(this.options.redisUrl).port || 6379)
    this.redisPid = pidListeningOn(redisPort) ?? pidNamed('redis-server')
    if (this.redisPid === undefined || cpuMs(this.redisPid) === undefined)
      this.notes.push(`Redis CPU not measured: no readable process found for port ${redisPort}`)
    else this.notes.push(`Redis is pid ${this.redisPid}: its CPU includes anything else using that Redis`)
    try {
      this.pgClient = new pg.Client({ connectionString: this.options.databaseUrl })
      this.pgClient.on('error', () => {})
      await this.pgClient.connect()
      const pidOf = async (client: pg.Client) =>
        (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
      this.ownPids.push(await pidOf(this.pgClient))
      this.waitClient = new pg.Client({ connectionString: this.options.databaseUrl })
      this.waitClient.on('error', () => {})
      await this.waitClient.connect()
      this.ownPids.push(await pidOf(this.waitClient))
      this.waits = new PgWaitSampler(this.waitClient, this.ownPids)
      this.waits.start()
    } catch (error) {
      this.pgClient = undefined
      this.notes.push(`PostgreSQL CPU not measured: ${(error as Error).message}`)
    }
    this.loop.enable()
    await this.sample(true)
    this.resetWindow()
    this.waits?.window()
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample(false)).catch(() => undefined)
    }, this.options.intervalMs ?? 1000)
    this.timer.unref()
  }

  private add(category: Category, key: string, now: number | undefined, firstSeenCounts: boolean): void {
    if (now === undefined) {
      if (!this.lastCpu.has(key)) this.unreadable.add(category)
      return
    }
    const last = this.lastCpu.get(key)
    this.lastCpu.set(key, now)
    const delta = last === undefined ? (firstSeenCounts ? now : 0) : now - last
    if (delta > 0) this.totals.set(category, (this.totals.get(category) ?? 0) + delta)
    else if (!this.totals.has(category)) this.totals.set(category, 0)
  }

  private async sample(initial: boolean): Promise<void> {
    for (const server of this.options.servers) {
      const pid = server.pid()
      if (pid === undefined) continue
      this.add(`server:${server.name}`, `pid:${pid}`, cpuMs(pid), !initial)
      const rss = rssBytes(pid)
      if (rss !== undefined) {
        this.rssLast.set(server.name, rss)
        this.rssPeak.set(server.name, Math.max(rss, this.rssPeak.get(server.name) ?? 0))
      }
    }
    if (this.redisPid !== undefined) this.add('redis', `pid:${this.redisPid}`, cpuMs(this.redisPid), false)
    if (this.pgClient) {
      try {
        const { rows } = await this.pgClient.query<{ pid: number; ours: boolean }>(
          `SELECT pid, datname = current_database() AS ours FROM pg_stat_activity
           WHERE pid <> ALL($1) AND (datname = current_database() OR datname IS NULL)`,
          [this.ownPids],
        )
        for (const row of rows) {
          this.add(
            row.ours ? 'postgres' : 'postgresShared',
            `pid:${row.pid}`,
            cpuMs(row.pid),
            !initial && row.ours,
          )
        }
      } catch {
        // A failed query (PostgreSQL busy or restarting) skips one sample.
      }
    }
  }

  private resetWindow(): void {
    this.windowStart = performance.now()
    this.windowTotals = new Map(this.totals)
    this.generatorStart = process.cpuUsage()
    this.machineStart = machineCpuMs()
    this.rssPeak.clear()
    for (const [name, rss] of this.rssLast) this.rssPeak.set(name, rss)
    this.loop.reset()
  }

  /** Takes a sample now, returns the figures since the last call (or start) and opens a new window. */
  async window(): Promise<WindowFigures> {
    await this.sampling
    await this.sample(false)
    const wallMs = performance.now() - this.windowStart
    const percent = (category: Category): number | null => {
      if (!this.totals.has(category)) return null
      const used = (this.totals.get(category) ?? 0) - (this.windowTotals.get(category) ?? 0)
      return Math.round((used / wallMs) * 1000) / 10
    }
    const servers: Record<string, number | null> = {}
    let serversTotal: number | null = null
    for (const server of this.options.servers) {
      const value = percent(`server:${server.name}`)
      servers[server.name] = value
      if (value !== null) serversTotal = Math.round(((serversTotal ?? 0) + value) * 10) / 10
    }
    const generator = process.cpuUsage(this.generatorStart)
    const machineNow = machineCpuMs()
    const machine =
      machineNow && this.machineStart
        ? Math.round(((machineNow.busy - this.machineStart.busy) / wallMs) * 1000) / 10
        : null
    const figures: WindowFigures = {
      wallMs: Math.round(wallMs),
      cpuPercent: {
        servers,
        serversTotal,
        postgres: percent('postgres'),
        postgresShared: percent('postgresShared'),
        redis: percent('redis'),
        generator: Math.round(((generator.user + generator.system) / 1000 / wallMs) * 1000) / 10,
        machine,
      },
      rssPeak: Object.fromEntries(
        this.options.servers.map((s) => [s.name, this.rssPeak.get(s.name) ?? null]),
      ),
      rssLast: Object.fromEntries(
        this.options.servers.map((s) => [s.name, this.rssLast.get(s.name) ?? null]),
      ),
      postgresWaits: this.waits?.window() ?? null,
      generatorLoopDelayMs: {
        p50: round1(this.loop.percentile(50) / 1e6),
        p99: round1(this.loop.percentile(99) / 1e6),
        max: round1(this.loop.max / 1e6),
      },
      notes: [...this.unreadable].map((c) => `${c}: /proc not readable for some of its processes`),
    }
    this.resetWindow()
    return figures
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.sampling
    this.loop.disable()
    this.waits?.stop()
    await this.pgClient?.end().catch(() => undefined)
    await this.waitClient?.end().catch(() => undefined)
  }
}

function round1(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 10) / 10 : 0
}
