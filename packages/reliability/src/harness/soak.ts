import { Recorder, summarize } from './recorder.js'
import { SimClient, type UidPool } from './sim-client.js'
import { type VerifyReport, verify } from './verify.js'
import { quiesce, runWorkload, type WorkloadOptions, type WorkloadResult } from './workload.js'

export interface SoakOptions extends WorkloadOptions {
  /** Where clients connect (a balancer, or one server). */
  url: string
  databaseUrl: string
  clients: number
  /** Flushes the write buffer before the database is compared. */
  flush: () => Promise<void>
  /** Runs beside the workload (a fault); clients keep writing until it is over, then quiesce. */
  during?: (context: SoakContext) => Promise<void>
  /** Longest wait for every client to become idle at the end. @default 60000 */
  quiesceTimeoutMs?: number
  /** What to add to the error when the soak fails (state of the server processes). */
  diagnostics?: () => string
  /** Called every `progressEveryMs` while clients write (long runs print it). */
  onProgress?: (progress: { elapsedMs: number; writes: number; pendingMax: number; online: number }) => void
  /** @default 30000 */
  progressEveryMs?: number
}

export interface SoakContext {
  clients: SimClient[]
  recorder: Recorder
}

export interface SoakReport {
  clients: number
  seed: number
  durationMs: number
  ops: number
  opsPerSecond: number
  byKind: WorkloadResult['byKind']
  offlineSwitches: number
  pushLatencyMs: ReturnType<typeof summarize>
  propagationLatencyMs: ReturnType<typeof summarize>
  /** Involuntary disconnects (server killed...) until the client was connected again. */
  reconnectMs: ReturnType<typeof summarize>
  quiesceMs: number
  pushErrors: Record<string, number>
  /** 'duplicate' answers to a resend on the same connection (no reconnect in between). */
  duplicatesWithoutReconnect: number
  verify: VerifyReport
  workloadFailures: string[]
}

/** Starts `clients` simulated clients, runs the workload (and a fault beside it), quiesces, checks. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const recorder = new Recorder()
  const pool: UidPool = { items: [] }
  const clients = Array.from(
    { length: options.clients },
    (_, index) => new SimClient({ index, url: options.url, recorder }),
  )
  const stops: Array<() => void> = []
  try {
    for (const client of clients) stops.push(client.start())
    await Promise.all(clients.map((client) => client.client.ready))
    const started = Date.now()
    const progress = options.onProgress
      ? setInterval(() => {
          const statuses = clients.map((client) => client.status())
          options.onProgress?.({
            elapsedMs: Date.now() - started,
            writes: clients.reduce(
              (sum, c) => sum + c.ops.create + c.ops.update + c.ops.increment + c.ops.delete,
              0,
            ),
            pendingMax: Math.max(...statuses.map((s) => s.pending)),
            online: statuses.filter((s) => s.online).length,
          })
        }, options.progressEveryMs ?? 30_000)
      : undefined
    stops.push(() => clearInterval(progress))
    const fault = options.during?.({ clients, recorder })
    const [workload] = await Promise.all([runWorkload(clients, pool, { ...options, until: fault }), fault])
    const quiesceMs = await quiesce(clients, options.quiesceTimeoutMs ?? 60_000)
    await options.flush()
    const report = await verify(options.databaseUrl, recorder, clients)
    return {
      clients: clients.length,
      seed: options.seed,
      durationMs: workload.durationMs,
      ops: workload.ops,
      opsPerSecond: Math.round((workload.ops / workload.durationMs) * 1000 * 10) / 10,
      byKind: workload.byKind,
      offlineSwitches: workload.offlineSwitches,
      pushLatencyMs: summarize(recorder.pushLatencies),
      propagationLatencyMs: summarize(recorder.propagationLatencies),
      reconnectMs: summarize(recorder.reconnectDurations),
      quiesceMs,
      pushErrors: Object.fromEntries(recorder.pushErrors),
      duplicatesWithoutReconnect: recorder.duplicatesWithoutReconnect,
      verify: report,
      workloadFailures: workload.failures,
    }
  } catch (error) {
    if (options.diagnostics && error instanceof Error) error.message += `\n${options.diagnostics()}`
    throw error
  } finally {
    for (const stop of stops) stop()
    await Promise.all(clients.map((client) => client.close()))
  }
}

/** A one-paragraph summary of a soak report for logs. */
export function formatReport(title: string, report: SoakReport): string {
  const v = report.verify
  return [
    `${title}: ${report.clients} clients, ${report.ops} writes in ${(report.durationMs / 1000).toFixed(1)} s = ${report.opsPerSecond} ops/s`,
    `  writes: ${JSON.stringify(report.byKind)}, offline switches: ${report.offlineSwitches}`,
    `  push latency (write -> ack, online): max ${report.pushLatencyMs.max} ms, p95 ${report.pushLatencyMs.p95} ms, p50 ${report.pushLatencyMs.p50} ms (${report.pushLatencyMs.count})`,
    `  live propagation (write -> other client): max ${report.propagationLatencyMs.max} ms, p95 ${report.propagationLatencyMs.p95} ms (${report.propagationLatencyMs.count})`,
    `  involuntary disconnects: ${report.reconnectMs.count}, back online after max ${report.reconnectMs.max} ms (p50 ${report.reconnectMs.p50} ms)`,
    `  quiesce: ${report.quiesceMs} ms; push error answers: ${JSON.stringify(report.pushErrors)}`,
    `  end state: ${v.liveRecords} records, ${v.deletedRecords} deleted, ${v.changes} changes (${v.duplicates} answered duplicate, ${report.duplicatesWithoutReconnect} of them without a reconnect; ${v.rejected} rejected), likes in db ${v.likesInDatabase} = expected ${v.likesExpected} (${v.likesAcked} acknowledged in ${v.incrementsAcked} increments, deleted records included)`,
    `  problems: ${v.problems.length === 0 ? 'none' : `\n    ${v.problems.join('\n    ')}`}`,
  ].join('\n')
}
