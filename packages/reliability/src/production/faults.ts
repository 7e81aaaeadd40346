/**
 * The production soak's faults, on a schedule, with the harness's injectors (the same ones, and
 * the same safety, as the fault tests: a server process the harness started, our own
 * redis-server, our own PostgreSQL; never the shared servers):
 *
 * - `kill`: SIGKILL a server process (the harness's `ServerProcess`), restart it on its port
 *   after 2 s (as `serverKiller` does). Its sockets drop; clients reconnect through the balancer.
 * - `redis`: SIGKILL our redis-server (`OwnRedisServer`, append-only file), start it again on
 *   the same port and folder after 2 s (as the Redis restart test does).
 * - `postgres`: stop our PostgreSQL at once (`OwnPostgres`, `pg_ctl -m immediate`: connections
 *   refused) and start it again after `pgDownSeconds` (as the PostgreSQL outage test does).
 *
 * Recovery is read afterwards from the generator's backlog (pushes queued, unanswered or
 * waiting to be resent, sampled every 250 ms): a fault is recovered from once the backlog is
 * back to what it was before the fault and stays there for 2 s.
 */
import type { Deployment } from '../harness/deployment.js'
import type { OwnPostgres } from '../harness/own-postgres.js'
import { sleep } from '../harness/ports.js'
import type { FaultName } from './options.js'

export interface BacklogSample {
  /** Seconds since the load started. */
  s: number
  backlog: number
  /** Errors so far by code (all requests of the load). */
  errors: Record<string, number>
  /** Disconnects of protocol clients so far. */
  disconnects: number
}

export interface FaultRecord {
  fault: FaultName
  what: string
  injectedAtS: number
  /** When the component was back (server serving again, Redis or PostgreSQL accepting). */
  restoredAtS: number
  outageMs: number
  /** When the backlog was back to its level before the fault (see `recoveredWhen`); null: never. */
  recoveredAtS: number | null
  /** From injection until recovered. */
  recoveryMs: number | null
  /** Recovered only once the offered load had ended (the drain emptied the backlog). */
  recoveredAfterLoadEnded: boolean
  /** Backlog (pushes) p90 in the 10 s before the fault, and the level that counts as recovered. */
  baselineBacklog: number
  recoveredWhen: string
  backlogPeak: number
  /** Errors of the load from injection to recovery (or to the next fault), by code. */
  errors: Record<string, number>
  /** Protocol clients' disconnects in the same span. */
  loadDisconnects: number
  /** Failed restarts before the server served again (kill). */
  failedStarts?: string[]
}

export interface FaultTargets {
  deployment: Deployment
  redis: { kill(): Promise<void>; start(): Promise<void> } | null
  postgres: OwnPostgres | null
  pgDownSeconds: number
}

export interface Injected {
  fault: FaultName
  what: string
  injectedAtS: number
  restoredAtS: number
  failedStarts?: string[]
}

/**
 * Runs the faults in order: fault i (of n) starts at (i+1)/(n+2) of the run. `now` gives the
 * seconds since the load started; `afterRestore` runs once the component is back (the run
 * restarts its resource monitor there: Redis has a new pid, PostgreSQL dropped its connections).
 */
export async function runFaults(
  faults: FaultName[],
  durationS: number,
  targets: FaultTargets,
  now: () => number,
  log: (line: string) => void,
  afterRestore: (fault: FaultName) => Promise<void>,
): Promise<Injected[]> {
  const done: Injected[] = []
  for (const [i, fault] of faults.entries()) {
    const startAt = ((i + 1) / (faults.length + 2)) * durationS
    const wait = startAt - now()
    if (wait > 0) await sleep(wait * 1000)
    const injectedAtS = now()
    let what: string
    let failedStarts: string[] | undefined
    if (fault === 'kill') {
      const server = targets.deployment.servers[0]!
      what = `SIGKILL ${server.name} (pid ${server.handle.pid}), restarted after 2 s`
      log(`fault: ${what}`)
      await server.kill('SIGKILL')
      await sleep(2000)
      failedStarts = await server.restart()
    } else if (fault === 'redis') {
      const redis = targets.redis
      if (!redis) throw new Error('the redis fault needs a redis-server of our own')
      what = 'SIGKILL redis-server, started again after 2 s (append-only file kept)'
      log(`fault: ${what}`)
      await redis.kill()
      await sleep(2000)
      await redis.start()
    } else {
      const postgres = targets.postgres
      if (!postgres) throw new Error('the postgres fault needs a PostgreSQL of our own')
      what = `PostgreSQL stopped (-m immediate: connections refused) for ${targets.pgDownSeconds} s`
      log(`fault: ${what}`)
      postgres.stop()
      await sleep(targets.pgDownSeconds * 1000)
      postgres.start()
    }
    const restoredAtS = now()
    log(`fault: ${fault} restored after ${(restoredAtS - injectedAtS).toFixed(1)} s`)
    await afterRestore(fault)
    done.push({ fault, what, injectedAtS, restoredAtS, ...(failedStarts ? { failedStarts } : {}) })
  }
  return done
}

/** Adds the recovery figures to each injected fault, from the backlog samples. */
export function recoveries(
  injected: Injected[],
  samples: BacklogSample[],
  options: { pushesPerSecond: number; durationS: number },
): FaultRecord[] {
  return injected.map((fault, i) => {
    const before = samples
      .filter((s) => s.s >= fault.injectedAtS - 10 && s.s < fault.injectedAtS)
      .map((s) => s.backlog)
      .sort((a, b) => a - b)
    const baseline = before.length > 0 ? before[Math.ceil(before.length * 0.9) - 1]! : 0
    const threshold = Math.max(3, Math.ceil(baseline * 2), Math.ceil(options.pushesPerSecond * 0.5))
    const after = samples.filter((s) => s.s >= fault.restoredAtS)
    let recoveredAtS: number | null = null
    for (let k = 0; k < after.length && recoveredAtS === null; k++) {
      const first = after[k]!
      if (first.backlog > threshold) continue
      // Held for 2 s (or until the samples end: the drain emptied the backlog).
      if (after.every((s) => s.s < first.s || s.s > first.s + 2 || s.backlog <= threshold))
        recoveredAtS = first.s
    }
    const nextInjection = injected[i + 1]?.injectedAtS ?? Number.POSITIVE_INFINITY
    const spanEnd = Math.min(recoveredAtS ?? nextInjection, nextInjection)
    const during = samples.filter((s) => s.s >= fault.injectedAtS && s.s <= spanEnd)
    const atStart = samples.filter((s) => s.s < fault.injectedAtS).at(-1)
    const atEnd = during.at(-1)
    const errors: Record<string, number> = {}
    if (atEnd)
      for (const [code, n] of Object.entries(atEnd.errors)) {
        const delta = n - (atStart?.errors[code] ?? 0)
        if (delta > 0) errors[code] = delta
      }
    const round = (s: number) => Math.round(s * 10) / 10
    return {
      fault: fault.fault,
      what: fault.what,
      injectedAtS: round(fault.injectedAtS),
      restoredAtS: round(fault.restoredAtS),
      outageMs: Math.round((fault.restoredAtS - fault.injectedAtS) * 1000),
      recoveredAtS: recoveredAtS === null ? null : round(recoveredAtS),
      recoveryMs: recoveredAtS === null ? null : Math.round((recoveredAtS - fault.injectedAtS) * 1000),
      recoveredAfterLoadEnded: recoveredAtS !== null && recoveredAtS > options.durationS,
      baselineBacklog: baseline,
      recoveredWhen: `backlog <= ${threshold} pushes for 2 s`,
      backlogPeak: Math.max(0, ...during.map((s) => s.backlog)),
      errors,
      loadDisconnects: (atEnd?.disconnects ?? 0) - (atStart?.disconnects ?? 0),
      ...(fault.failedStarts ? { failedStarts: fault.failedStarts } : {}),
    }
  })
}
