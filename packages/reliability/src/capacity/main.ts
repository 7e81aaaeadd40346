/**
 * `npm run capacity -- [flags]`: the load generator and capacity figures (issue 17). Starts
 * tidesync server processes on Redis + PostgreSQL (127.0.0.1 only, a throwaway database and key
 * prefix), drives them with protocol-level clients, subscribers and a few real clients, prints
 * a table and writes the figures to packages/reliability/capacity-results.json (one entry per
 * scenario). Flags: see `USAGE` in options.ts (`--help`).
 *
 * It stops by itself: a watchdog ends every process it started (by handle) and exits 1 when
 * the run outlives its bound; so do Ctrl-C and SIGTERM. Exit code: 0 when the end-state checks
 * passed, 1 when they did not (or the run failed), 2 for a usage error or missing services.
 */
import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { databaseUrl, probePostgres, probeRedis, redisUrl } from '@tidesync/test-env'
import type { Deployment } from '../harness/deployment.js'
import { CapacityUsageError, parseCapacityArgs, USAGE } from './options.js'
import { formatCapacity, resultKey, writeResults } from './report.js'
import { runCapacity } from './run.js'

const out = (line: string) => process.stdout.write(`${line}\n`)
const DEFAULT_OUT = fileURLToPath(new URL('../../capacity-results.json', import.meta.url))

async function main(): Promise<number> {
  let options: ReturnType<typeof parseCapacityArgs>
  try {
    options = parseCapacityArgs(process.argv.slice(2), DEFAULT_OUT)
  } catch (error) {
    if (!(error instanceof CapacityUsageError)) throw error
    if (!error.message) {
      process.stdout.write(USAGE)
      return 0
    }
    process.stderr.write(`${error.message}\n\n${USAGE}`)
    return 2
  }
  for (const reason of [await probeRedis(), await probePostgres()]) {
    if (reason) {
      process.stderr.write(`capacity needs Redis and PostgreSQL: ${reason}\n`)
      return 2
    }
  }
  for (const url of [redisUrl, databaseUrl]) {
    const host = new URL(url).hostname
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
      process.stderr.write(`capacity runs against 127.0.0.1 only (got ${url})\n`)
      return 2
    }
  }
  if (options.profileDir) {
    // Read by every forked server process (harness/server-process.ts).
    const dir = resolve(options.profileDir)
    mkdirSync(dir, { recursive: true })
    process.env.RELIABILITY_CPU_PROFILE_DIR = dir
    out(`server CPU profiles go to ${dir} (written when each server exits)`)
  }
  let deployment: Deployment | undefined
  const abort = (why: string, code: number) => {
    process.stderr.write(`capacity: ${why}; ending every process it started\n`)
    void (deployment?.kill() ?? Promise.resolve()).finally(() => process.exit(code))
  }
  // Set-up (servers, connections: ~2 min at most) + load + drain + checks (3 min at most).
  const boundSeconds =
    120 + options.duration + options.drainSeconds + 180 + (options.scenario === 'ramp' ? 60 : 0)
  const watchdog = setTimeout(() => abort(`still running after ${boundSeconds} s`, 1), boundSeconds * 1000)
  watchdog.unref()
  process.once('SIGINT', () => abort('interrupted', 130))
  process.once('SIGTERM', () => abort('terminated', 143))

  const result = await runCapacity(options, {
    log: (line) => out(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    onDeployment: (d) => {
      deployment = d
    },
  })
  clearTimeout(watchdog)
  out('')
  out(formatCapacity(result))
  if (options.out) {
    writeResults(options.out, result)
    out(`figures written to ${options.out} (under "runs.${resultKey(result)}")`)
  }
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`capacity failed: ${error.stack ?? error.message}\n`)
    process.exit(1)
  },
)
