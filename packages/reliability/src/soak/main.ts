/**
 * `npm run soak`: the long soak. Two server processes on Redis + PostgreSQL behind a load
 * balancer, N simulated clients for a bounded time, then the same end-state checks as the short
 * soak in `npm test`. Writes its figures to packages/reliability/results.json.
 *
 * Environment (all optional):
 *   SOAK_SECONDS   how long clients write          default 300, at most 3600
 *   SOAK_CLIENTS   how many simulated clients      default 12, at most 64
 *   SOAK_SEED      seed of the random decisions    default 1
 *   SOAK_THINK_MS  pause between two writes of one client, "min-max" ms   default 150-450
 *                  (the default offers a load two cores hold; a smaller pause overloads the
 *                  servers and the backlog of pushes grows without bound)
 *   SOAK_KILL_EVERY_S  SIGKILL and restart a server every N seconds (0: never)  default 0
 *   SOAK_RESULTS   where to write the figures      default packages/reliability/results.json
 *   REDIS_URL / DATABASE_URL  the shared servers (a throwaway database and key prefix are used)
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import {
  createTestDatabase,
  databaseUrl,
  probePostgres,
  probeRedis,
  redisUrl,
  uniqueId,
} from '@tidesync/test-env'
import { Deployment, dropRedisPrefix } from '../harness/deployment.js'
import { type ServerKill, serverKiller } from '../harness/faults.js'
import { formatReport, runSoak } from '../harness/soak.js'

const out = (line: string) => process.stdout.write(`${line}\n`)

/**
 * JSON.stringify with 2 spaces, keeping arrays of plain values on one line when they fit in 110
 * columns: the layout biome's formatter gives, so the committed file stays lint-clean.
 */
function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /^( *)("[^"]*": )?\[\n((?:\1 {2}(?:"(?:[^"\\]|\\.)*"|[-\d.eE+]+|true|false|null),?\n)+)\1\]/gm,
    (whole, indent: string, key: string | undefined, body: string) => {
      const items = body
        .split('\n')
        .map((line) => line.trim().replace(/,$/, ''))
        .filter(Boolean)
      const line = `${indent}${key ?? ''}[${items.join(', ')}]`
      return line.length <= 110 ? line : whole
    },
  )
}

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max} (got ${raw})`)
  }
  return value
}

async function main(): Promise<number> {
  const seconds = envInt('SOAK_SECONDS', 300, 5, 3600)
  const clients = envInt('SOAK_CLIENTS', 12, 1, 64)
  const seed = envInt('SOAK_SEED', 1, 0, 2 ** 31 - 1)
  const killEvery = envInt('SOAK_KILL_EVERY_S', 0, 0, 3600)
  const think = (process.env.SOAK_THINK_MS ?? '150-450').split('-').map(Number)
  if (
    think.length !== 2 ||
    think.some((n) => !Number.isInteger(n) || n < 0 || n > 60_000) ||
    think[0]! > think[1]!
  ) {
    throw new Error(`SOAK_THINK_MS must be "min-max" in ms (got ${process.env.SOAK_THINK_MS})`)
  }
  for (const reason of [await probeRedis(), await probePostgres()]) {
    if (reason) {
      process.stderr.write(`soak needs Redis and PostgreSQL: ${reason}\n`)
      return 2
    }
  }
  out(
    `soak: ${clients} clients for ${seconds} s, think ${think[0]}-${think[1]} ms, seed ${seed}, Redis ${redisUrl}, PostgreSQL ${databaseUrl}`,
  )
  const database = await createTestDatabase('rel_longsoak')
  const keyPrefix = `${uniqueId('rel_longsoak')}:`
  let deployment: Deployment | undefined
  const stop = () => {
    void deployment?.kill().finally(() => process.exit(130))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    deployment = await Deployment.start({
      databaseUrl: database.url,
      ipc: { driver: 'redis', url: redisUrl, keyPrefix },
    })
    const live = deployment
    const kills: ServerKill[] = []
    const report = await runSoak({
      url: live.url,
      databaseUrl: database.url,
      clients,
      durationMs: seconds * 1000,
      seed,
      thinkMs: [think[0]!, think[1]!],
      quiesceTimeoutMs: 180_000,
      onProgress: (p) =>
        out(
          `  ${Math.round(p.elapsedMs / 1000)} s: ${p.writes} writes, ${p.online}/${clients} online, largest outbox ${p.pendingMax}`,
        ),
      flush: () => live.flush(),
      during:
        killEvery > 0
          ? serverKiller(
              live,
              { times: Math.max(1, Math.floor(seconds / killEvery) - 1), everyMs: killEvery * 1000 },
              kills,
            )
          : undefined,
    })
    const stats = await Promise.all(live.servers.map((server) => server.stats(true)))
    out(formatReport('long soak', report))
    const results = {
      kind: 'tidesync long soak',
      finishedAt: new Date().toISOString(),
      node: process.version,
      servers: live.servers.length,
      ipc: 'redis',
      database: 'postgresql',
      thinkMs: think,
      ...report,
      serverKills: kills,
      serverHeapUsedMb: stats.map((s) => Math.round(s.heapUsed / 1e5) / 10),
      serverLogCount: stats.map((s) => s.logCount),
      connectionsPerServer: Object.fromEntries(live.balancer.connections),
    }
    const file = process.env.SOAK_RESULTS || fileURLToPath(new URL('../../results.json', import.meta.url))
    writeFileSync(file, `${formatJson(results)}\n`)
    out(`figures written to ${file}`)
    return report.verify.problems.length === 0 && report.workloadFailures.length === 0 ? 0 : 1
  } finally {
    await deployment?.stop().catch(() => deployment?.kill())
    await dropRedisPrefix(redisUrl, keyPrefix).catch(() => undefined)
    await database.drop().catch(() => undefined)
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`soak failed: ${error.stack ?? error.message}\n`)
    process.exit(1)
  },
)
