/**
 * The settings of a capacity run, from command-line flags, with their defaults and bounds (a
 * run is always bounded in time and in the number of connections).
 */
export const SCENARIOS = ['push', 'fanout', 'idle', 'mixed', 'ramp'] as const
export type Scenario = (typeof SCENARIOS)[number]

export interface CapacityOptions {
  /** What to measure (see README): push, fanout, idle, mixed or ramp. @default 'push' */
  scenario: Scenario
  /** tidesync server processes on Redis IPC + PostgreSQL, 1 to 3. @default 2 */
  servers: number
  /** Protocol-level clients that push (and pull). @default 200 */
  clients: number
  /** Offered pushes per second over all clients (ramp: the first step). @default 1000 (ramp 250) */
  rate: number
  /** Seconds of offered load (ramp: the longest the whole ramp may take). @default 20 (ramp 110) */
  duration: number
  /** Sockets subscribed to `items`, spread over the servers. @default 1000 for fanout/idle/mixed, else 0 */
  subscribers: number
  /** Updates per second that must reach every subscriber. @default 20 (fanout, mixed), else 0 */
  fanoutRate: number
  /** Pulls per second over all clients. @default rate / 20 in mixed, else 0 */
  pullRate: number
  /** Changes in a batched push. @default 20 */
  batch: number
  /** Share of pushes that are batched (0-1). @default 0.1 in mixed, else 0 */
  batched: number
  /** Whether the protocol-level clients subscribe to their own scope. @default true */
  subscribe: boolean
  /** Real `@tidesync/client`s (fake-indexeddb) writing during the run and checked at the end. @default 3 */
  realClients: number
  /** Requests of one client unanswered at once (the rest wait in the client). @default 8 */
  inFlight: number
  /** Ramp: rate multiplier per step. @default 1.5 */
  rampFactor: number
  /** Ramp: seconds per step. @default 10 */
  stepSeconds: number
  /** Ramp: p99 acknowledgement that ends the ramp, ms. @default 1000 */
  rampLimitMs: number
  /** node-postgres pool size per server. @default 8 */
  poolSize: number
  /**
   * Seconds of unmeasured pushes before the measured load (at the first rate, at most 50/s), so
   * that freshly started servers are warm (JIT, pool connections). @default 3
   */
  warmupSeconds: number
  /** Longest wait for answers after the offered window, seconds. @default 30 */
  drainSeconds: number
  seed: number
  /** Write a V8 CPU profile of every server process into this folder (`--cpu-prof`). @default none */
  profileDir: string | null
  /** Where the figures go (merged by scenario). @default packages/reliability/capacity-results.json */
  out: string | null
}

const BOUNDS: Record<string, [number, number]> = {
  servers: [1, 3],
  clients: [0, 2000],
  rate: [0, 50_000],
  duration: [1, 600],
  subscribers: [0, 5000],
  fanoutRate: [0, 1000],
  pullRate: [0, 10_000],
  batch: [1, 500],
  batched: [0, 1],
  realClients: [0, 10],
  inFlight: [1, 64],
  rampFactor: [1.05, 4],
  stepSeconds: [2, 120],
  rampLimitMs: [10, 60_000],
  poolSize: [1, 64],
  drainSeconds: [1, 300],
  warmupSeconds: [0, 60],
  seed: [0, 2 ** 31 - 1],
}

export const USAGE = `npm run capacity -- [flags]

  --scenario push|fanout|idle|mixed|ramp   what to measure (default push)
  --servers N        tidesync server processes on Redis + PostgreSQL, 1-3 (default 2)
  --clients N        protocol-level clients that push (default 200)
  --rate N           offered pushes/s over all clients; ramp: the first step (default 1000; ramp 250)
  --duration S       seconds of load; ramp: the longest the ramp may take (default 20; ramp 110)
  --subscribers N    sockets subscribed to one model, spread over the servers (default 1000 for fanout/idle/mixed)
  --fanout-rate N    updates/s that must reach every subscriber (default 20 for fanout/mixed)
  --pull-rate N      pulls/s over all clients (default rate/20 in mixed)
  --batch N          changes per batched push (default 20)
  --batched F        share of pushes that are batched, 0-1 (default 0.1 in mixed)
  --no-subscribe     the pushing clients do not subscribe to their scope
  --real-clients N   real @tidesync/client instances checked for convergence (default 3)
  --in-flight N      requests of one client unanswered at once (default 8)
  --ramp-factor F    ramp: rate multiplier per step (default 1.5)
  --step-seconds S   ramp: seconds per step (default 10)
  --ramp-limit-ms N  ramp: p99 acknowledgement that ends the ramp (default 1000)
  --pool-size N      node-postgres pool size per server (default 8)
  --drain-seconds S  longest wait for answers after the load (default 30)
  --warmup S         unmeasured pushes first, at the first rate (at most 50/s) (default 3)
  --seed N           seed of every random choice (default 1)
  --profile DIR      V8 CPU profile of every server process into DIR (summarise: src/capacity/profile-summary.ts)
  --out FILE         results file (default packages/reliability/capacity-results.json); --no-out: none
`

export class CapacityUsageError extends Error {
  readonly code = 'CAPACITY_USAGE'
}

/** Parses `--flag value` pairs; unknown flags and values out of bounds throw a usage error. */
export function parseCapacityArgs(argv: string[], defaultOut: string): CapacityOptions {
  const raw = new Map<string, string>()
  const flags = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--no-subscribe' || arg === '--no-out' || arg === '--help' || arg === '-h') {
      flags.add(arg)
      continue
    }
    if (!arg.startsWith('--')) throw new CapacityUsageError(`unexpected argument ${arg}`)
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined]
    const value = inline ?? argv[++i]
    if (value === undefined) throw new CapacityUsageError(`--${name} needs a value`)
    raw.set(name, value)
  }
  if (flags.has('--help') || flags.has('-h')) throw new CapacityUsageError('')
  const scenario = (raw.get('scenario') ?? 'push') as Scenario
  if (!SCENARIOS.includes(scenario))
    throw new CapacityUsageError(`--scenario must be one of ${SCENARIOS.join(', ')}`)
  raw.delete('scenario')
  const out = raw.get('out')
  raw.delete('out')
  const profileDir = raw.get('profile') ?? null
  raw.delete('profile')
  const number = (flag: string, key: string, fallback: number, integer = true): number => {
    const text = raw.get(flag)
    raw.delete(flag)
    const value = text === undefined ? fallback : Number(text)
    const [min, max] = BOUNDS[key]!
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max)
      throw new CapacityUsageError(
        `--${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${text})`,
      )
    return value
  }
  const withFanout = scenario === 'fanout' || scenario === 'mixed' || scenario === 'idle'
  const rate = number(
    'rate',
    'rate',
    scenario === 'ramp' ? 250 : scenario === 'fanout' || scenario === 'idle' ? 0 : 1000,
  )
  const options: CapacityOptions = {
    scenario,
    servers: number('servers', 'servers', 2),
    clients: number('clients', 'clients', scenario === 'fanout' ? 0 : 200),
    rate,
    duration: number('duration', 'duration', scenario === 'ramp' ? 110 : 20),
    subscribers: number('subscribers', 'subscribers', withFanout ? 1000 : 0),
    fanoutRate: number(
      'fanout-rate',
      'fanoutRate',
      scenario === 'fanout' || scenario === 'mixed' ? 20 : 0,
      false,
    ),
    pullRate: number('pull-rate', 'pullRate', scenario === 'mixed' ? Math.round(rate / 20) : 0, false),
    batch: number('batch', 'batch', 20),
    batched: number('batched', 'batched', scenario === 'mixed' ? 0.1 : 0, false),
    subscribe: !flags.has('--no-subscribe'),
    realClients: number('real-clients', 'realClients', 3),
    inFlight: number('in-flight', 'inFlight', 8),
    rampFactor: number('ramp-factor', 'rampFactor', 1.5, false),
    stepSeconds: number('step-seconds', 'stepSeconds', 10),
    rampLimitMs: number('ramp-limit-ms', 'rampLimitMs', 1000),
    poolSize: number('pool-size', 'poolSize', 8),
    drainSeconds: number('drain-seconds', 'drainSeconds', 30),
    warmupSeconds: number('warmup', 'warmupSeconds', 3),
    seed: number('seed', 'seed', 1),
    profileDir,
    out: flags.has('--no-out') ? null : (out ?? defaultOut),
  }
  if (raw.size > 0)
    throw new CapacityUsageError(`unknown flag(s): ${[...raw.keys()].map((k) => `--${k}`).join(' ')}`)
  if (options.scenario === 'idle' && (options.rate > 0 || options.fanoutRate > 0))
    throw new CapacityUsageError('idle holds connections without traffic: no --rate or --fanout-rate')
  if (options.rate > 0 && options.clients === 0) throw new CapacityUsageError('--rate needs --clients > 0')
  return options
}
