/**
 * One capacity run: a deployment of tidesync server processes (Redis IPC, one throwaway
 * PostgreSQL database, `scoped` so every user has its own scope), protocol-level clients and
 * subscribers connected straight to the servers, a few real clients through the balancer, the
 * scenario's load, then the end-state checks. Everything it starts it ends, also on failure.
 */
import { cpus, loadavg } from 'node:os'
import { createTestDatabase, redisUrl, uniqueId } from '@tidesync/test-env'
import { Deployment, dropRedisPrefix } from '../harness/deployment.js'
import type { ServerStats } from '../harness/messages.js'
import { Fanout, type FanoutSummary } from './fanout.js'
import { Ledger, type LedgerReport } from './ledger.js'
import { Load } from './load.js'
import type { LoadSummary } from './metrics.js'
import type { CapacityOptions } from './options.js'
import type { RealClients, RealClientsReport } from './real-clients.js'
import { ResourceMonitor, type WindowFigures } from './resource-monitor.js'

export interface RampStep extends LoadSummary {
  rate: number
  unsent: number
  cpu: WindowFigures
  /** p99 acknowledgement under the limit, with (almost) every push answered. */
  held: boolean
}

export interface ServerFigures {
  pid: number | null
  /** Connected sockets and live subscriptions once every client was connected, and at the end. */
  idle: { sockets: number; subscriptions: number }
  end: { sockets: number; subscriptions: number } | null
  baselineRssMb: number
  baselineHeapMb: number
  idleRssMb: number
  idleHeapMb: number
  /** (idle - baseline) / sockets, after a GC. */
  idleRssPerConnectionKb: number | null
  idleHeapPerConnectionKb: number | null
  activePeakRssMb: number | null
  /** (peak under load - baseline) / sockets. */
  activeRssPerConnectionKb: number | null
  logCount: number
  firstLogs: string[]
}

export interface CapacityResult {
  kind: 'tidesync capacity'
  scenario: CapacityOptions['scenario']
  finishedAt: string
  node: string
  machine: { cpus: number; loadAverageAtStart: number[] }
  settings: Omit<CapacityOptions, 'out'>
  deployment: {
    servers: number
    ipc: 'redis'
    database: 'postgresql'
    poolSize: number
    writeBufferFlushMs: number
  }
  connections: { load: number; subscribers: number; fanoutDrivers: number; realClients: number }
  servers: Record<string, ServerFigures>
  idleCpu: WindowFigures
  load: (LoadSummary & { unsent: number; cpu: WindowFigures }) | null
  ramp: {
    limitMs: number
    steps: RampStep[]
    lastRateHeld: number | null
    firstRateNotHeld: number | null
  } | null
  fanout: FanoutSummary | null
  /**
   * What the servers did while the load ran (the real clients' and fan-out drivers' requests
   * included): PostgreSQL queries, IPC calls (Redis commands, about), and per acknowledged push.
   */
  work: WorkFigures | null
  liveEchoes: number
  clientDisconnects: number
  verification: { load: LedgerReport; real: RealClientsReport }
  notes: string[]
  ok: boolean
}

export interface WorkFigures {
  pgQueries: number
  ipcCalls: number
  ipcByMethod: Record<string, number>
  perPush: { pgQueries: number; ipcCalls: number; serverCpuMs: number | null } | null
}

export interface RunHooks {
  /** Progress lines. @default none */
  log?: (line: string) => void
  /** Called once the deployment runs (a watchdog can kill it). */
  onDeployment?: (deployment: Deployment) => void
}

const FLUSH_MS = 250
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10
const perConnectionKb = (delta: number, sockets: number) =>
  sockets > 0 ? Math.round(delta / sockets / 102.4) / 10 : null

export async function runCapacity(options: CapacityOptions, hooks: RunHooks = {}): Promise<CapacityResult> {
  const log = hooks.log ?? (() => {})
  const loadAverageAtStart = loadavg().map((n) => Math.round(n * 100) / 100)
  const database = await createTestDatabase('rel_capacity')
  const keyPrefix = `${uniqueId('rel_capacity')}:`
  const ledger = new Ledger()
  const notes: string[] = []
  let deployment: Deployment | undefined
  let monitor: ResourceMonitor | undefined
  let load: Load | undefined
  let fanout: Fanout | undefined
  let real: RealClients | undefined
  try {
    log(`starting ${options.servers} server(s) on Redis + PostgreSQL (${database.name})`)
    deployment = await Deployment.start({
      servers: options.servers,
      databaseUrl: database.url,
      ipc: { driver: 'redis', url: redisUrl, keyPrefix },
      writeBuffer: { flushInterval: FLUSH_MS },
      server: { scoped: true, poolSize: options.poolSize },
    })
    hooks.onDeployment?.(deployment)
    const live = deployment
    const urls = live.servers.map((server) => server.url)
    monitor = new ResourceMonitor({
      servers: live.servers.map((server) => ({ name: server.name, pid: () => server.handle.pid })),
      databaseUrl: database.url,
      redisUrl,
    })
    await monitor.start()
    notes.push(...monitor.notes)
    const statsAll = (gc: boolean) => Promise.all(live.servers.map((server) => server.stats(gc)))
    const baseline = await statsAll(true)

    load = new Load(urls, ledger, options)
    log(`connecting ${options.clients} protocol clients${options.subscribe ? ' (subscribed)' : ''}`)
    await load.connect()
    if (options.subscribers > 0 || options.fanoutRate > 0) {
      fanout = new Fanout(urls, ledger, options.seed)
      log(`connecting ${options.subscribers} subscribers`)
      await fanout.connectSubscribers(options.subscribers)
      if (options.fanoutRate > 0) await fanout.startDrivers()
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const idleStats = await statsAll(true)
    await monitor.window()
    const idleSeconds = options.scenario === 'idle' ? options.duration : 3
    log(`holding the connections idle for ${idleSeconds} s`)
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
    const idleCpu = await monitor.window()

    if (options.realClients > 0) {
      // Loaded only when used: the protocol-level load needs nothing of @tidesync/client.
      const { RealClients } = await import('./real-clients.js')
      real = new RealClients(live.url, options.realClients, options.seed)
      await real.start()
    }
    await monitor.window()
    if (options.warmupSeconds > 0 && options.rate > 0 && options.clients > 0) {
      const rate = Math.min(options.rate, 50)
      log(`warming up: ${rate} pushes/s for ${options.warmupSeconds} s (not measured)`)
      await load.run(rate, options.warmupSeconds, undefined)
      await monitor.window()
    }
    const beforeLoad = await statsAll(false)

    let loadResult: CapacityResult['load'] = null
    let ramp: CapacityResult['ramp'] = null
    if (options.scenario === 'ramp') {
      ramp = await runRamp(options, load, fanout, monitor, log)
    } else if (options.scenario !== 'idle') {
      log(
        `offering ${options.rate} pushes/s${options.pullRate ? `, ${options.pullRate} pulls/s` : ''}${fanout && options.fanoutRate ? `, ${options.fanoutRate} fan-out updates/s` : ''} for ${options.duration} s`,
      )
      const summary = await load.run(options.rate, options.duration, fanout)
      await fanout?.settle(10_000)
      loadResult = { ...summary, cpu: await monitor.window() }
    }
    const peakStats = await statsAll(false)
    const pushes =
      loadResult?.pushesAcknowledged ??
      ramp?.steps.reduce((sum, step) => sum + step.pushesAcknowledged, 0) ??
      0
    const cpuWindows = loadResult ? [loadResult.cpu] : (ramp?.steps.map((step) => step.cpu) ?? [])
    const work = workFigures(beforeLoad, peakStats, pushes, cpuWindows)
    const activePeak = loadResult?.cpu.rssPeak ?? maxPeaks(ramp?.steps.map((s) => s.cpu.rssPeak) ?? [])

    log('checking: real clients converge, every acknowledged push is in the database')
    const realReport: RealClientsReport = real
      ? await real.finish(database.url, () => live.flush(), 120_000)
      : { clients: 0, writes: 0, quiesceMs: 0, verify: null, failures: [] }
    const fanoutSummary = fanout?.summary() ?? null
    const liveEchoes = load.liveMessages
    const clientDisconnects = load.disconnects
    const unanswered = load.unanswered
    if (unanswered > 0) notes.push(`${unanswered} request(s) still unanswered when the run ended`)
    load.close()
    fanout?.close()
    await live.flush()
    const loadReport = await ledger.verify(database.url, (owner) => !owner.startsWith('c'))
    const endStats = await statsAll(true)

    const servers: Record<string, ServerFigures> = {}
    live.servers.forEach((server, i) => {
      const base = baseline[i]!
      const idle = idleStats[i]!
      const peak = activePeak[server.name] ?? null
      servers[server.name] = {
        pid: server.handle.pid ?? null,
        idle: { sockets: idle.sockets, subscriptions: idle.subscriptions },
        end: { sockets: peakStats[i]!.sockets, subscriptions: peakStats[i]!.subscriptions },
        baselineRssMb: mb(base.rss),
        baselineHeapMb: mb(base.heapUsed),
        idleRssMb: mb(idle.rss),
        idleHeapMb: mb(idle.heapUsed),
        idleRssPerConnectionKb: perConnectionKb(idle.rss - base.rss, idle.sockets),
        idleHeapPerConnectionKb: perConnectionKb(idle.heapUsed - base.heapUsed, idle.sockets),
        activePeakRssMb: peak === null ? null : mb(peak),
        activeRssPerConnectionKb: peak === null ? null : perConnectionKb(peak - base.rss, idle.sockets),
        logCount: endStats[i]!.logCount,
        firstLogs: endStats[i]!.logs.slice(0, 5),
      }
    })
    const loopP99 = Math.max(
      loadResult?.cpu.generatorLoopDelayMs.p99 ?? 0,
      ...(ramp?.steps.map((s) => s.cpu.generatorLoopDelayMs.p99) ?? []),
    )
    if (loopP99 > 50)
      notes.push(
        `the generator's event loop was delayed up to ${loopP99} ms (p99): it was short of CPU, and its latencies include that delay`,
      )
    notes.push(
      'protocol clients and subscribers connect straight to the servers; real clients through the balancer',
    )
    const problems = [
      ...loadReport.problems,
      ...(realReport.verify?.problems ?? []),
      ...realReport.failures,
      ...(fanoutSummary && fanoutSummary.missing > 0
        ? [`${fanoutSummary.missing} fan-out deliveries missing`]
        : []),
    ]
    return {
      kind: 'tidesync capacity',
      scenario: options.scenario,
      finishedAt: new Date().toISOString(),
      node: process.version,
      machine: { cpus: cpus().length, loadAverageAtStart },
      settings: { ...options, out: undefined } as Omit<CapacityOptions, 'out'>,
      deployment: {
        servers: options.servers,
        ipc: 'redis',
        database: 'postgresql',
        poolSize: options.poolSize,
        writeBufferFlushMs: FLUSH_MS,
      },
      connections: {
        load: load.clients.length,
        subscribers: fanout?.subscriberCount ?? 0,
        fanoutDrivers: fanout && options.fanoutRate > 0 ? options.servers : 0,
        realClients: options.realClients,
      },
      servers,
      idleCpu,
      load: loadResult,
      ramp,
      fanout: fanoutSummary,
      work,
      liveEchoes,
      clientDisconnects,
      verification: { load: loadReport, real: realReport },
      notes,
      ok: problems.length === 0 && loadReport.rejected === 0,
    }
  } finally {
    load?.close()
    fanout?.close()
    await real?.close().catch(() => undefined)
    await monitor?.stop().catch(() => undefined)
    await deployment?.stop().catch(() => deployment?.kill())
    await dropRedisPrefix(redisUrl, keyPrefix).catch(() => undefined)
    await database.drop().catch(() => undefined)
  }
}

/** Raises the offered rate step by step until p99 acknowledgement passes the limit (or time runs out). */
async function runRamp(
  options: CapacityOptions,
  load: Load,
  fanout: Fanout | undefined,
  monitor: ResourceMonitor,
  log: (line: string) => void,
): Promise<NonNullable<CapacityResult['ramp']>> {
  const steps: RampStep[] = []
  const deadline = performance.now() + options.duration * 1000
  let rate = options.rate
  let lastRateHeld: number | null = null
  let firstRateNotHeld: number | null = null
  while (performance.now() + options.stepSeconds * 1000 < deadline) {
    log(`ramp: ${rate} pushes/s for ${options.stepSeconds} s`)
    const summary = await load.run(rate, options.stepSeconds, fanout)
    const cpu = await monitor.window()
    const failed = summary.unsent + Object.values(summary.errors).reduce((a, b) => a + b, 0)
    const held = summary.pushAckMs.p99 <= options.rampLimitMs && failed <= summary.pushesScheduled * 0.01
    steps.push({ rate, ...summary, cpu, held })
    log(
      `  achieved ${summary.pushesAchievedPerSecond}/s, ack p50 ${summary.pushAckMs.p50} p99 ${summary.pushAckMs.p99} ms, server CPU ${cpu.cpuPercent.serversTotal}%, postgres ${cpu.cpuPercent.postgres}%`,
    )
    if (!held) {
      firstRateNotHeld = rate
      break
    }
    lastRateHeld = rate
    rate = Math.round(rate * options.rampFactor)
  }
  return { limitMs: options.rampLimitMs, steps, lastRateHeld, firstRateNotHeld }
}

function workFigures(
  before: ServerStats[],
  after: ServerStats[],
  pushes: number,
  windows: WindowFigures[],
): WorkFigures | null {
  if (windows.length === 0) return null
  let pgQueries = 0
  const ipcByMethod: Record<string, number> = {}
  after.forEach((stats, i) => {
    pgQueries += stats.pgQueries - before[i]!.pgQueries
    for (const [method, n] of Object.entries(stats.ipcCalls)) {
      const delta = n - (before[i]!.ipcCalls[method] ?? 0)
      if (delta > 0) ipcByMethod[method] = (ipcByMethod[method] ?? 0) + delta
    }
  })
  const ipcCalls = Object.values(ipcByMethod).reduce((a, b) => a + b, 0)
  let serverCpuMs: number | null = 0
  for (const window of windows) {
    if (window.cpuPercent.serversTotal === null) serverCpuMs = null
    else if (serverCpuMs !== null) serverCpuMs += (window.cpuPercent.serversTotal / 100) * window.wallMs
  }
  const per = (n: number) => Math.round((n / pushes) * 10) / 10
  return {
    pgQueries,
    ipcCalls,
    ipcByMethod: Object.fromEntries(Object.entries(ipcByMethod).sort((a, b) => b[1] - a[1])),
    perPush:
      pushes > 0
        ? {
            pgQueries: per(pgQueries),
            ipcCalls: per(ipcCalls),
            serverCpuMs: serverCpuMs === null ? null : per(serverCpuMs),
          }
        : null,
  }
}

function maxPeaks(peaks: Array<Record<string, number | null>>): Record<string, number | null> {
  const out: Record<string, number | null> = {}
  for (const peak of peaks)
    for (const [name, value] of Object.entries(peak))
      if (value !== null) out[name] = Math.max(out[name] ?? 0, value)
  return out
}
