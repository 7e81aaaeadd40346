/**
 * One production soak: 2 tidesync server processes (Redis IPC, PostgreSQL, `scoped`) behind
 * the harness's balancer; capacity's protocol-level clients offering a steady rate of changes
 * in batched pushes (open loop, through the balancer, re-sending what a fault left
 * unacknowledged); a few real clients writing too; the faults on their schedule; then the
 * checks: every acknowledged change is in the database (capacity's ledger) and every real
 * client equals the database. Everything it starts it ends, also on failure.
 */
import { cpus, loadavg } from 'node:os'
import type { LatencySummary } from '../capacity/latency.js'
import type { LedgerReport } from '../capacity/ledger.js'
import { LoadClient } from '../capacity/load-client.js'
import { LoadMetrics } from '../capacity/metrics.js'
import { Pacer } from '../capacity/pacer.js'
import type { RealClients, RealClientsReport } from '../capacity/real-clients.js'
import type { WindowFigures } from '../capacity/resource-monitor.js'
import { Deployment } from '../harness/deployment.js'
import { sleep } from '../harness/ports.js'
import { type BacklogSample, type FaultRecord, type Injected, recoveries, runFaults } from './faults.js'
import { MonitorSlot } from './monitor-slot.js'
import type { ProductionOptions } from './options.js'
import { type Services, startServices } from './services.js'
import { RunMetrics, WindowedLedger, type WindowReport, Windows } from './windows.js'

const FLUSH_MS = 250
const SERVERS = 2

export interface ProductionResult {
  kind: 'tidesync production soak'
  finishedAt: string
  node: string
  machine: { cpus: number; loadAverageAtStart: number[]; loadAverageAtEnd: number[] }
  settings: Omit<ProductionOptions, 'out'>
  deployment: {
    servers: number
    redis: string
    postgres: string
    poolSize: number
    writeBufferFlushMs: number
    clientsConnect: string
  }
  load: {
    clients: number
    changesPerPush: number
    pushesPerSecond: number
    offeredChangesPerSecond: number
    offeredSeconds: number
    changesOffered: number
    changesAcknowledged: number
    /** Changes acknowledged while the load was offered, per second of the offered window. */
    achievedChangesPerSecondDuringLoad: number
    /** All acknowledged changes / (last answer - start): the rate the deployment kept up with. */
    achievedChangesPerSecond: number
    /** From the end of the offered load until the last answer (resends included). */
    drainMs: number
    pushAckMs: LatencySummary
    pushServiceMs: LatencySummary
    resends: number
    disconnects: number
    errors: Record<string, number>
    /** Requests still queued or unanswered when the drain ended (dropped). */
    unfinished: number
    /** Windows whose acknowledged changes/s were under 90 % of the offered rate. */
    windowsUnder90Percent: number
    /** Every offered change was acknowledged, at >= 98 % of the offered rate overall. */
    held: boolean
  }
  realClients: {
    clients: number
    writes: number
    writesPerSecond: number
    quiesceMs: number
    records: number | null
  }
  /** Load changes + real client writes, per second of the offered window. */
  totalWritesPerSecond: number
  windows: WindowReport[]
  faults: FaultRecord[]
  /** CPU per process over the offered window (time-weighted over the windows; % of one core). */
  cpuAverage: Record<string, number | null>
  servers: Record<
    string,
    {
      restarts: number
      sockets: number | null
      bufferErrors: number | null
      logCount: number | null
      firstLogs: string[]
    }
  >
  balancerConnections: Record<string, number>
  verification: { load: LedgerReport; real: RealClientsReport }
  problems: string[]
  notes: string[]
  ok: boolean
}

export interface ProductionHooks {
  log?: (line: string) => void
  /** Called once the deployment runs (a watchdog can kill it). */
  onDeployment?: (deployment: Deployment) => void
  /** Gets the function that removes Redis and PostgreSQL of the run (a watchdog can call it). */
  onServicesClose?: (close: () => Promise<void>) => void
}

export async function runProduction(
  options: ProductionOptions,
  hooks: ProductionHooks = {},
): Promise<ProductionResult> {
  const log = hooks.log ?? (() => {})
  const loadAverageAtStart = loadavg().map((n) => Math.round(n * 100) / 100)
  const notes: string[] = []
  const windowMs = options.windowSeconds * 1000
  const durationMs = options.duration * 1000
  const pushesPerSecond = options.rate / options.batch
  const windows = new Windows(windowMs, durationMs)
  const metrics = new RunMetrics(windows)
  const ledger = new WindowedLedger(windows)
  const clients: LoadClient[] = []
  const timers: NodeJS.Timeout[] = []
  let stopped = false
  let services: Services | undefined
  let deployment: Deployment | undefined
  let monitor: MonitorSlot | undefined
  let real: RealClients | undefined
  let pacer: Pacer | undefined
  try {
    services = await startServices(
      { ownRedis: options.faults.includes('redis'), ownPostgres: options.faults.includes('postgres') },
      hooks.onServicesClose,
    )
    log(`Redis: ${services.describe.redis}`)
    log(`PostgreSQL: ${services.describe.postgres}`)
    log(`starting ${SERVERS} servers`)
    deployment = await Deployment.start({
      servers: SERVERS,
      databaseUrl: services.databaseUrl,
      ipc: { driver: 'redis', url: services.redisUrl, keyPrefix: services.keyPrefix },
      writeBuffer: { flushInterval: FLUSH_MS },
      server: { scoped: true, poolSize: options.poolSize, pgConnectTimeoutMs: 2000 },
    })
    hooks.onDeployment?.(deployment)
    const live = deployment
    const restarts = new Map(live.servers.map((server) => [server.name, 0]))
    monitor = new MonitorSlot({
      servers: live.servers.map((server) => ({ name: server.name, pid: () => server.handle.pid })),
      databaseUrl: services.databaseUrl,
      redisUrl: services.redisUrl,
    })
    await monitor.start()

    log(
      `connecting ${options.clients} protocol clients ${options.connect === 'direct' ? 'straight to the servers' : 'through the balancer'} (subscribed to their scope)`,
    )
    for (let first = 0; first < options.clients; first += 50) {
      const batch = Array.from({ length: Math.min(50, options.clients - first) }, (_, k) => {
        const index = first + k
        return new LoadClient({
          index,
          url: options.connect === 'direct' ? live.servers[index % SERVERS]!.url : live.url,
          user: `u${index}`,
          group: `g${index % 16}`,
          owner: `u${index}`,
          ledger,
          maxInFlight: options.inFlight,
          seed: options.seed,
          resend: { delayMs: 200, maxDelayMs: 2000 },
        })
      })
      await Promise.all(batch.map((client) => client.connect()))
      await Promise.all(batch.map((client) => client.subscribe()))
      clients.push(...batch)
    }
    if (options.realClients > 0) {
      // Loaded only when used: the protocol-level load needs nothing of @tidesync/client.
      const { RealClients } = await import('../capacity/real-clients.js')
      real = new RealClients(live.url, options.realClients, options.seed)
      log(`starting ${options.realClients} real clients`)
      await real.start()
    }
    const backlog = () => clients.reduce((sum, client) => sum + client.backlog, 0)
    const disconnects = () => clients.reduce((sum, client) => sum + client.disconnects, 0)
    const n = clients.length
    if (options.warmup > 0) {
      const rate = Math.max(1, Math.round(pushesPerSecond / 5))
      log(
        `warming up: ${rate} pushes/s of ${options.batch} changes for ${options.warmup} s (checked, not measured)`,
      )
      const warm = new LoadMetrics()
      await new Pacer([{ rate, fire: (k, at) => clients[k % n]!.push(options.batch, at, warm) }]).run(
        options.warmup * 1000,
      )
      const deadline = performance.now() + 60_000
      while (backlog() > 0 && performance.now() < deadline) await sleep(50)
      const w = warm.summary()
      log(
        `  warm-up: ${w.changesAcknowledged} changes acknowledged, ack p50 ${w.pushAckMs.p50} p99 ${w.pushAckMs.p99} ms`,
      )
    }
    await monitor.window()

    log(
      `offering ${options.rate} changes/s for ${options.duration} s: ${pushesPerSecond} pushes/s of ${options.batch} changes from ${options.clients} protocol clients, plus ${options.realClients} real clients; faults: ${options.faults.join(', ') || 'none'}`,
    )
    pacer = new Pacer([
      {
        rate: pushesPerSecond,
        fire: (k, at) => {
          if (k === 0) windows.begin(at)
          const window = windows.offeredAt(at)
          window.offeredPushes++
          window.offeredChanges += options.batch
          clients[k % n]!.push(options.batch, at, metrics)
        },
      },
    ])
    let offeredEndS = Number.NaN
    const offered = pacer.run(durationMs).then(() => {
      metrics.stoppedAt = performance.now()
      offeredEndS = windows.seconds(metrics.stoppedAt)
    })
    metrics.startedAt = windows.startedAt

    // Every 250 ms: the backlog (fault recovery is read from it).
    const samples: BacklogSample[] = []
    const sample = () => {
      const s = windows.seconds()
      const value = backlog()
      const window = windows.at()
      window.backlogMax = Math.max(window.backlogMax, value)
      samples.push({
        s,
        backlog: value,
        errors: Object.fromEntries(metrics.errors),
        disconnects: disconnects(),
      })
    }
    const sampler = setInterval(sample, 250)
    timers.push(sampler)
    // At the end of each window: its CPU figures and a progress line.
    const closeWindow = async (index: number) => {
      const window = windows.list[index]!
      window.cpu = await monitor!.window()
      const r = windows.report(window, windows.seconds())
      const c = r.cpuPercent
      log(
        `[${String(r.toS).padStart(4)} s] offered ${r.offeredChangesPerSecond}/s, acked ${r.achievedChangesPerSecond}/s, ack p50 ${r.ackMs.p50} p99 ${r.ackMs.p99} ms, backlog max ${r.backlogMax}${Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''}${c ? `; CPU servers ${c.serversTotal ?? 'n/a'}% postgres ${c.postgres ?? 'n/a'}% redis ${c.redis ?? 'n/a'}% generator ${c.generator}% machine ${c.machine ?? 'n/a'}%` : ''}`,
      )
    }
    const windowCount = windows.list.length - 1
    const windowLoop = (async () => {
      for (let index = 0; index < windowCount && !stopped; index++) {
        const wait = windows.startedAt + Math.min(durationMs, (index + 1) * windowMs) - performance.now()
        if (wait > 0) await sleep(wait)
        if (!stopped) await closeWindow(index).catch(() => undefined)
      }
    })()

    const injected: Injected[] = await runFaults(
      options.faults,
      options.duration,
      {
        deployment: live,
        redis: services.redis,
        postgres: services.postgres,
        pgDownSeconds: options.pgDownSeconds,
      },
      () => windows.seconds(),
      log,
      async (fault) => {
        if (fault === 'kill') {
          const name = live.servers[0]!.name
          restarts.set(name, (restarts.get(name) ?? 0) + 1)
        } else await monitor!.restart()
      },
    )
    await offered
    log(`load offered; waiting up to ${options.drainSeconds} s for the last answers (backlog ${backlog()})`)
    const drainDeadline = performance.now() + options.drainSeconds * 1000
    while (backlog() > 0 && performance.now() < drainDeadline) await sleep(50)
    const drainEndS = windows.seconds()
    sample()
    clearInterval(sampler)
    await windowLoop
    windows.drain.cpu = await monitor.window()
    const unfinished = backlog()
    if (unfinished > 0)
      notes.push(
        `${unfinished} request(s) were still queued or unanswered when the drain ended (answered during the checks, or else counted as unresolved)`,
      )
    const summary = metrics.summary()
    const faults = recoveries(injected, samples, { pushesPerSecond, durationS: options.duration })
    for (const fault of faults) {
      const until = fault.recoveredAtS ?? fault.restoredAtS
      for (const window of windows.list)
        if (window.fromS <= until && (Number.isNaN(window.toS) ? drainEndS : window.toS) > fault.injectedAtS)
          window.faults.add(fault.fault)
    }

    log('checking: real clients equal the database, every acknowledged change is in the database')
    const realReport = await finishReal(real, options.realClients, services.databaseUrl, () => live.flush())
    const resends = clients.reduce((sum, client) => sum + client.resends, 0)
    const loadDisconnects = disconnects()
    for (const client of clients) client.close()
    await live.flush()
    const loadReport = await ledger.verify(services.databaseUrl, (owner) => !owner.startsWith('c'))
    const stats = await Promise.all(live.servers.map((server) => server.stats().catch(() => null)))

    const reports = windows.list.map((window) => windows.report(window, drainEndS))
    const loadWindows = reports.slice(0, -1)
    const changesOffered = windows.list.reduce((sum, w) => sum + w.offeredChanges, 0)
    const ackedDuringLoad = windows.list.slice(0, -1).reduce((sum, w) => sum + w.ackedChanges, 0)
    const offeredSeconds = Math.round(offeredEndS * 10) / 10
    const achievedChangesPerSecond = summary.changesAchievedPerSecond
    const held =
      summary.changesAcknowledged >= changesOffered &&
      loadReport.unresolved === 0 &&
      unfinished === 0 &&
      achievedChangesPerSecond >= options.rate * 0.98
    const realWrites = realReport.writes
    const problems = [
      ...loadReport.problems,
      ...(loadReport.rejected > 0 ? [`${loadReport.rejected} load change(s) rejected`] : []),
      ...(realReport.verify?.problems ?? []),
      ...realReport.failures,
    ]
    if (loadReport.unresolved > 0)
      notes.push(
        `${loadReport.unresolved} change(s) of the load ended unresolved (no answer by the end): their records were checked for existence only`,
      )
    if (options.faults.includes('postgres'))
      notes.push(
        "the postgres fault's pg_ctl stop/start run synchronously in the generator process (the harness's OwnPostgres): the generator's event loop stalls meanwhile (see generatorLoopDelayMaxMs)",
      )
    notes.push(
      options.connect === 'direct'
        ? 'protocol clients connect straight to one server each and reconnect to it after its restart; real clients through the balancer (in the generator process)'
        : 'protocol clients and real clients connect through the balancer (in the generator process); a killed server loses its sockets to the other server, and they stay there',
    )
    notes.push(...monitor.notes)
    return {
      kind: 'tidesync production soak',
      finishedAt: new Date().toISOString(),
      node: process.version,
      machine: {
        cpus: cpus().length,
        loadAverageAtStart,
        loadAverageAtEnd: loadavg().map((n) => Math.round(n * 100) / 100),
      },
      settings: { ...options, out: undefined } as Omit<ProductionOptions, 'out'>,
      deployment: {
        servers: SERVERS,
        redis: services.describe.redis,
        postgres: services.describe.postgres,
        poolSize: options.poolSize,
        writeBufferFlushMs: FLUSH_MS,
        clientsConnect:
          options.connect === 'direct'
            ? 'protocol clients straight to server i mod 2 (back to it after its restart); real clients through the balancer'
            : 'through the balancer (round robin over the live servers)',
      },
      load: {
        clients: clients.length,
        changesPerPush: options.batch,
        pushesPerSecond,
        offeredChangesPerSecond: Math.round((changesOffered / offeredSeconds) * 10) / 10,
        offeredSeconds,
        changesOffered,
        changesAcknowledged: summary.changesAcknowledged,
        achievedChangesPerSecondDuringLoad: Math.round((ackedDuringLoad / offeredSeconds) * 10) / 10,
        achievedChangesPerSecond,
        drainMs: Math.round(Math.max(0, metrics.lastAnswerAt - metrics.stoppedAt)),
        pushAckMs: summary.pushAckMs,
        pushServiceMs: summary.pushServiceMs,
        resends,
        disconnects: loadDisconnects,
        errors: summary.errors,
        unfinished,
        windowsUnder90Percent: loadWindows.filter((w) => w.achievedChangesPerSecond < options.rate * 0.9)
          .length,
        held,
      },
      realClients: {
        clients: realReport.clients,
        writes: realWrites,
        writesPerSecond: Math.round((realWrites / offeredSeconds) * 10) / 10,
        quiesceMs: realReport.quiesceMs,
        records: realReport.verify?.liveRecords ?? null,
      },
      totalWritesPerSecond: Math.round(((ackedDuringLoad + realWrites) / offeredSeconds) * 10) / 10,
      windows: reports,
      faults,
      cpuAverage: averageCpu(windows.list.slice(0, -1).map((w) => w.cpu)),
      servers: Object.fromEntries(
        live.servers.map((server, i) => [
          server.name,
          {
            restarts: restarts.get(server.name) ?? 0,
            sockets: stats[i]?.sockets ?? null,
            bufferErrors: stats[i]?.bufferErrors ?? null,
            logCount: stats[i]?.logCount ?? null,
            firstLogs: stats[i]?.logs.slice(0, 5) ?? [],
          },
        ]),
      ),
      balancerConnections: Object.fromEntries(
        live.servers.map((server) => [server.name, live.balancer.connections.get(server.port) ?? 0]),
      ),
      verification: { load: loadReport, real: realReport },
      problems,
      notes,
      ok: problems.length === 0,
    }
  } finally {
    stopped = true
    pacer?.stop()
    for (const timer of timers) clearTimeout(timer)
    for (const client of clients) client.close()
    await real?.close().catch(() => undefined)
    await monitor?.stop().catch(() => undefined)
    await deployment?.stop().catch(() => deployment?.kill())
    await services?.close()
  }
}

/**
 * Stops the real clients and compares them with the database. A client that never becomes idle
 * (its pushes keep failing) is a failure of the run, reported with the rest, not a crash of it.
 */
async function finishReal(
  real: RealClients | undefined,
  clients: number,
  databaseUrl: string,
  flush: () => Promise<void>,
): Promise<RealClientsReport> {
  if (!real) return { clients: 0, writes: 0, quiesceMs: 0, verify: null, failures: [] }
  try {
    return await real.finish(databaseUrl, flush, 180_000)
  } catch (error) {
    return {
      clients,
      writes: 0,
      quiesceMs: 180_000,
      verify: null,
      failures: [`real clients not checked: ${(error as Error).message.split('\n')[0]}`],
    }
  }
}

/** Time-weighted average CPU per process over the windows (null where never measured). */
function averageCpu(figures: Array<WindowFigures | null>): Record<string, number | null> {
  const sums = new Map<string, { weighted: number; ms: number }>()
  const add = (key: string, value: number | null, ms: number) => {
    if (value === null) return
    const sum = sums.get(key) ?? { weighted: 0, ms: 0 }
    sum.weighted += value * ms
    sum.ms += ms
    sums.set(key, sum)
  }
  const keys = new Set<string>()
  for (const f of figures) {
    if (!f) continue
    const c = f.cpuPercent
    for (const [name, value] of Object.entries(c.servers)) {
      keys.add(name)
      add(name, value, f.wallMs)
    }
    for (const key of [
      'serversTotal',
      'postgres',
      'postgresShared',
      'redis',
      'generator',
      'machine',
    ] as const) {
      keys.add(key)
      add(key, c[key], f.wallMs)
    }
  }
  return Object.fromEntries(
    [...keys].map((key) => {
      const sum = sums.get(key)
      return [key, sum && sum.ms > 0 ? Math.round((sum.weighted / sum.ms) * 10) / 10 : null]
    }),
  )
}
