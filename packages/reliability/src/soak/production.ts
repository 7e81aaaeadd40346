/**
 * `npm run soak:production -- [flags]`: the long soak at production load (issue 17). Two
 * tidesync server processes on Redis + PostgreSQL behind a balancer, capacity's protocol-level
 * clients offering a steady rate of changes in batched pushes (default 500 changes/s as 50
 * pushes/s of 10, for 300 s), a few real clients writing too, and faults on a schedule (a server
 * SIGKILLed and restarted, Redis restarted, PostgreSQL down 10 s). At the end every acknowledged
 * change must be in the database and every real client equal to it. Prints a window-by-window
 * table and writes the figures to packages/reliability/production-results.json (a file of its
 * own). Flags: see `USAGE` in ../production/options.ts (`--help`).
 *
 * 127.0.0.1 only. It stops by itself: a watchdog ends every process it started (by handle) and
 * exits 1 when the run outlives its bound; so do Ctrl-C and SIGTERM. Exit code: 0 when the
 * end-state checks passed (whether the rate was held is in the output and the file), 1 when
 * they did not or the run failed, 2 for a usage error or missing services.
 */
import { fileURLToPath } from 'node:url'
import { databaseUrl, probePostgres, probeRedis, redisUrl } from '@tidesync/test-env'
import type { Deployment } from '../harness/deployment.js'
import { ProductionUsageError, parseProductionArgs, USAGE } from '../production/options.js'
import { formatProduction, writeProductionResults } from '../production/report.js'
import { runProduction } from '../production/run.js'
import { missingBinaries } from '../production/services.js'

const out = (line: string) => process.stdout.write(`${line}\n`)
const DEFAULT_OUT = fileURLToPath(new URL('../../production-results.json', import.meta.url))
const LOCAL = ['127.0.0.1', 'localhost', '::1', '[::1]']

async function main(): Promise<number> {
  let options: ReturnType<typeof parseProductionArgs>
  try {
    options = parseProductionArgs(process.argv.slice(2), DEFAULT_OUT)
  } catch (error) {
    if (!(error instanceof ProductionUsageError)) throw error
    if (!error.message) {
      process.stdout.write(USAGE)
      return 0
    }
    process.stderr.write(`${error.message}\n\n${USAGE}`)
    return 2
  }
  const needs = {
    ownRedis: options.faults.includes('redis'),
    ownPostgres: options.faults.includes('postgres'),
  }
  const missing = missingBinaries(needs)
  if (missing) {
    process.stderr.write(`soak:production: ${missing}\n`)
    return 2
  }
  // The shared servers are used for what no fault restarts (and for the throwaway database).
  const shared: Array<[string, () => Promise<string | null>]> = []
  if (!needs.ownRedis) shared.push([redisUrl, () => probeRedis()])
  if (!needs.ownPostgres) shared.push([databaseUrl, () => probePostgres()])
  for (const [url, probe] of shared) {
    if (!LOCAL.includes(new URL(url).hostname)) {
      process.stderr.write(`soak:production runs against 127.0.0.1 only (got ${url})\n`)
      return 2
    }
    const reason = await probe()
    if (reason) {
      process.stderr.write(`soak:production needs ${url}: ${reason}\n`)
      return 2
    }
  }

  let deployment: Deployment | undefined
  let closeServices: (() => Promise<void>) | undefined
  let aborting = false
  const abort = (why: string, code: number) => {
    if (aborting) return
    aborting = true
    process.stderr.write(`soak:production: ${why}; ending every process it started\n`)
    void (deployment?.kill() ?? Promise.resolve())
      .then(() => closeServices?.())
      .finally(() => process.exit(code))
  }
  // Set-up (~2 min at most) + load + drain + checks (real clients' quiesce: 3 min at most).
  const boundSeconds = 120 + options.duration + options.drainSeconds + 240
  const watchdog = setTimeout(() => abort(`still running after ${boundSeconds} s`, 1), boundSeconds * 1000)
  watchdog.unref()
  process.once('SIGINT', () => abort('interrupted', 130))
  process.once('SIGTERM', () => abort('terminated', 143))

  const result = await runProduction(options, {
    log: (line) => out(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    onDeployment: (d) => {
      deployment = d
    },
    onServicesClose: (close) => {
      closeServices = close
    },
  })
  clearTimeout(watchdog)
  out('')
  out(formatProduction(result))
  if (options.out) {
    writeProductionResults(options.out, result)
    out(`figures written to ${options.out}`)
  }
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`soak:production failed: ${error.stack ?? error.message}\n`)
    process.exit(1)
  },
)
