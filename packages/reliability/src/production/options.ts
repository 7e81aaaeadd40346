/**
 * The settings of a production soak, from command-line flags, with their defaults and bounds (a
 * run is always bounded in time, rate and number of connections).
 */
export const FAULTS = ['kill', 'redis', 'postgres'] as const
export type FaultName = (typeof FAULTS)[number]

export interface ProductionOptions {
  /** Seconds of offered load. @default 300 */
  duration: number
  /** Changes per second offered by the protocol-level clients (in pushes of `batch`). @default 500 */
  rate: number
  /** Changes per push (a real client pushes its outbox in batches). @default 10 */
  batch: number
  /** Protocol-level clients, each with its own clientId and scope. @default 200 */
  clients: number
  /** Real `@tidesync/client`s (fake-indexeddb) writing beside the load, checked at the end. @default 3 */
  realClients: number
  /**
   * How the protocol clients reach the servers: `balancer` (one URL, round robin over the live
   * servers: a killed server's clients move to the other one and stay there) or `direct`
   * (client i to server i mod 2, as capacity runs: a killed server's clients wait for its
   * restart and come back to it). Real clients always use the balancer. @default 'balancer'
   */
  connect: 'balancer' | 'direct'
  /** Faults injected during the run, in this order. @default kill, redis, postgres */
  faults: FaultName[]
  /** How long PostgreSQL refuses connections in the `postgres` fault, seconds. @default 10 */
  pgDownSeconds: number
  /**
   * Seconds of unmeasured load first, at a fifth of the push rate, so that freshly started
   * servers are warm (JIT, pool connections); its changes are checked with the rest. @default 10
   */
  warmup: number
  /** Length of a reporting window, seconds. @default 10 */
  windowSeconds: number
  /** Longest wait for the last answers (and resends) after the offered window, seconds. @default 90 */
  drainSeconds: number
  /** Requests of one protocol client unanswered at once (the rest wait in the client). @default 8 */
  inFlight: number
  /** node-postgres pool size per server. @default 8 */
  poolSize: number
  seed: number
  /** Where the figures go. @default packages/reliability/production-results.json */
  out: string | null
}

const BOUNDS = {
  duration: [10, 1800],
  rate: [1, 20_000],
  batch: [1, 500],
  clients: [1, 2000],
  realClients: [0, 10],
  pgDownSeconds: [1, 60],
  warmup: [0, 60],
  windowSeconds: [1, 60],
  drainSeconds: [5, 600],
  inFlight: [1, 64],
  poolSize: [1, 64],
  seed: [0, 2 ** 31 - 1],
} as const satisfies Record<string, readonly [number, number]>

export const USAGE = `npm run soak:production -- [flags]

  --duration S         seconds of offered load, ${BOUNDS.duration.join('-')} (default 300)
  --rate N             changes/s offered by the protocol-level clients, ${BOUNDS.rate.join('-')} (default 500)
  --batch N            changes per push, ${BOUNDS.batch.join('-')} (default 10: 500 changes/s = 50 pushes/s)
  --clients N          protocol-level clients, ${BOUNDS.clients.join('-')} (default 200)
  --real-clients N     real @tidesync/client instances writing beside the load, ${BOUNDS.realClients.join('-')} (default 3)
  --connect MODE       balancer (one URL, round robin over live servers) or direct (client i to
                       server i mod 2; a killed server's clients wait for its restart) (default balancer)
  --faults LIST        comma-separated, in order: kill (SIGKILL a server, restart it), redis (restart
                       Redis), postgres (PostgreSQL down --pg-down-seconds); or none (default kill,redis,postgres)
  --pg-down-seconds S  how long PostgreSQL refuses connections, ${BOUNDS.pgDownSeconds.join('-')} (default 10)
  --warmup S           unmeasured load first, at a fifth of the rate, ${BOUNDS.warmup.join('-')} (default 10)
  --window-seconds S   reporting window, ${BOUNDS.windowSeconds.join('-')} (default 10)
  --drain-seconds S    longest wait for the last answers after the load, ${BOUNDS.drainSeconds.join('-')} (default 90)
  --in-flight N        requests of one protocol client unanswered at once, ${BOUNDS.inFlight.join('-')} (default 8)
  --pool-size N        node-postgres pool size per server, ${BOUNDS.poolSize.join('-')} (default 8)
  --seed N             seed of every random choice (default 1)
  --out FILE           results file (default packages/reliability/production-results.json); --no-out: none
`

export class ProductionUsageError extends Error {
  readonly code = 'PRODUCTION_USAGE'
}

/** Parses `--flag value` pairs; unknown flags and values out of bounds throw a usage error. */
export function parseProductionArgs(argv: string[], defaultOut: string): ProductionOptions {
  const raw = new Map<string, string>()
  const flags = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--no-out' || arg === '--help' || arg === '-h') {
      flags.add(arg)
      continue
    }
    if (!arg.startsWith('--')) throw new ProductionUsageError(`unexpected argument ${arg}`)
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined]
    const value = inline ?? argv[++i]
    if (value === undefined) throw new ProductionUsageError(`--${name} needs a value`)
    raw.set(name, value)
  }
  if (flags.has('--help') || flags.has('-h')) throw new ProductionUsageError('')
  const take = (flag: string): string | undefined => {
    const value = raw.get(flag)
    raw.delete(flag)
    return value
  }
  const number = (flag: string, key: keyof typeof BOUNDS, fallback: number): number => {
    const text = take(flag)
    const value = text === undefined ? fallback : Number(text)
    const [min, max] = BOUNDS[key]
    if (!Number.isInteger(value) || value < min || value > max)
      throw new ProductionUsageError(`--${flag} must be an integer from ${min} to ${max} (got ${text})`)
    return value
  }
  const out = take('out')
  const connect = take('connect') ?? 'balancer'
  if (connect !== 'balancer' && connect !== 'direct')
    throw new ProductionUsageError(`--connect must be balancer or direct (got ${connect})`)
  const faults = parseFaults(take('faults') ?? FAULTS.join(','))
  const options: ProductionOptions = {
    duration: number('duration', 'duration', 300),
    rate: number('rate', 'rate', 500),
    batch: number('batch', 'batch', 10),
    clients: number('clients', 'clients', 200),
    realClients: number('real-clients', 'realClients', 3),
    connect,
    faults,
    pgDownSeconds: number('pg-down-seconds', 'pgDownSeconds', 10),
    warmup: number('warmup', 'warmup', 10),
    windowSeconds: number('window-seconds', 'windowSeconds', 10),
    drainSeconds: number('drain-seconds', 'drainSeconds', 90),
    inFlight: number('in-flight', 'inFlight', 8),
    poolSize: number('pool-size', 'poolSize', 8),
    seed: number('seed', 'seed', 1),
    out: flags.has('--no-out') ? null : (out ?? defaultOut),
  }
  if (raw.size > 0)
    throw new ProductionUsageError(`unknown flag(s): ${[...raw.keys()].map((k) => `--${k}`).join(' ')}`)
  const pushesPerSecond = options.rate / options.batch
  if (pushesPerSecond > 5000)
    throw new ProductionUsageError(
      `--rate / --batch is ${pushesPerSecond} pushes/s; at most 5000 (raise --batch)`,
    )
  const needed = minimumDuration(options)
  if (options.duration < needed)
    throw new ProductionUsageError(
      `--duration must be at least ${needed} s for the faults ${options.faults.join(', ')} (each needs room to recover before the load ends)`,
    )
  if (options.duration < options.windowSeconds)
    throw new ProductionUsageError('--duration must be at least one --window-seconds')
  return options
}

function parseFaults(text: string): FaultName[] {
  if (text === 'none' || text === '') return []
  const names = text.split(',').map((name) => name.trim())
  for (const name of names)
    if (!(FAULTS as readonly string[]).includes(name))
      throw new ProductionUsageError(
        `--faults: unknown fault "${name}" (known: ${FAULTS.join(', ')}, or none)`,
      )
  if (new Set(names).size !== names.length) throw new ProductionUsageError('--faults: a fault is named twice')
  return names as FaultName[]
}

/**
 * The shortest run that leaves every fault its slot: faults start at 20 %, 40 %, 60 % ... of
 * the run (one slot each), and each needs its outage plus about 5 s to recover before the next
 * one or the end.
 */
function minimumDuration(options: Pick<ProductionOptions, 'faults' | 'pgDownSeconds'>): number {
  if (options.faults.length === 0) return BOUNDS.duration[0]
  const longest = Math.max(...options.faults.map((fault) => outageSeconds(fault, options.pgDownSeconds) + 5))
  // The first fault starts at 1/(n+2) of the run; every slot is that long.
  return Math.max(BOUNDS.duration[0], Math.ceil(longest * (options.faults.length + 2)))
}

/** The outage a fault imposes, seconds (a server restart takes a few more on a loaded machine). */
export function outageSeconds(fault: FaultName, pgDownSeconds: number): number {
  return fault === 'postgres' ? pgDownSeconds : fault === 'kill' ? 5 : 2
}
