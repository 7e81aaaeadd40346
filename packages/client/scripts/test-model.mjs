#!/usr/bin/env node
// Runs the client's model test (src/__tests__/model.test.ts) for many runs over several seeds:
//
//   npm run test:model -- --runs 1000                 (from the repo root or packages/client)
//   npm run test:model -- --runs 300 --seeds 11,22 --jobs 2
//
// --runs N     total runs, split across the seeds (1000 over 7 seeds: 143 x 6 + 142). @default 700
// --seeds L    comma-separated seeds; `default` is the test's own seed. @default default,11,22,33,44,55,66
// --jobs N     seeds run at the same time, each in its own vitest process with its own server. @default 1
//
// Each seed runs in one vitest process (TIDESYNC_MODEL_SEED / TIDESYNC_MODEL_RUNS); fast-check
// stops at the first failing run of a seed. Prints one line per seed and a summary; exits 1 when
// any seed failed, with the line that replays the failing case and the test's output.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const TEST_FILE = 'src/__tests__/model.test.ts'
const DEFAULT_SEEDS = ['default', '11', '22', '33', '44', '55', '66']
const packageDir = fileURLToPath(new URL('..', import.meta.url))

function usage(message) {
  console.error(`test:model: ${message}`)
  console.error('usage: npm run test:model -- [--runs N] [--seeds default,11,22] [--jobs N]')
  process.exit(2)
}

function parseArgs(argv) {
  const options = { runs: 700, seeds: DEFAULT_SEEDS, jobs: 1 }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2)
    const value = inline ?? argv[++i]
    if (value === undefined) usage(`${flag} needs a value`)
    if (flag === '--runs' || flag === '--jobs') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < 1) usage(`${flag} must be a positive integer, got ${value}`)
      options[flag.slice(2)] = n
    } else if (flag === '--seeds') {
      const seeds = value.split(',').map((seed) => seed.trim())
      for (const seed of seeds) if (seed !== 'default' && !/^-?\d+$/.test(seed)) usage(`not a seed: ${seed}`)
      options.seeds = seeds
    } else usage(`unknown option ${flag}`)
  }
  if (options.runs < options.seeds.length) options.seeds = options.seeds.slice(0, options.runs)
  return options
}

/** `runs` split across `count` seeds, the first ones taking the remainder. */
function split(runs, count) {
  return Array.from({ length: count }, (_, i) => Math.floor(runs / count) + (i < runs % count ? 1 : 0))
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`

/** Runs one seed in a vitest process; resolves with its result (never rejects). */
function runSeed(seed, runs) {
  const env = { ...process.env, TIDESYNC_MODEL_RUNS: String(runs), NO_COLOR: '1', FORCE_COLOR: '0' }
  delete env.TIDESYNC_MODEL_PATH
  if (seed === 'default') delete env.TIDESYNC_MODEL_SEED
  else env.TIDESYNC_MODEL_SEED = seed
  const startedAt = Date.now()
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', TEST_FILE], { cwd: packageDir, env })
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    child.on('error', (error) => {
      output += `\n${error.stack ?? error}`
    })
    child.on('close', (code, signal) => {
      const ms = Date.now() - startedAt
      // fast-check: "Property failed after 83 tests\n{ seed: 11, path: "82", endOnFailure: true }"
      const failure = output.match(/Property failed after (\d+) tests?\s*\{ seed: (-?\d+), path: "([^"]*)"/)
      resolve({ seed, runs, ms, ok: code === 0, code: code ?? signal, output, failure })
    })
  })
}

function replayLine(result) {
  const [, run, seed, path] = result.failure
  return (
    `run ${run} of seed ${seed} failed; replay (in packages/client): ` +
    `TIDESYNC_MODEL_SEED=${seed} TIDESYNC_MODEL_PATH=${path} TIDESYNC_MODEL_RUNS=1 npx vitest run ${TEST_FILE}`
  )
}

const options = parseArgs(process.argv.slice(2))
const plan = options.seeds.map((seed, i) => ({ seed, runs: split(options.runs, options.seeds.length)[i] }))
console.log(
  `model test: ${options.runs} runs over ${plan.length} seeds (${plan
    .map(({ seed, runs }) => `${seed}: ${runs}`)
    .join(', ')}), ${options.jobs} at a time`,
)

const startedAt = Date.now()
const results = []
let next = 0
async function worker() {
  while (next < plan.length) {
    const { seed, runs } = plan[next++]
    const result = await runSeed(seed, runs)
    results.push(result)
    const status = result.ok ? 'ok' : 'FAILED'
    console.log(
      `  seed ${seed.padEnd(7)} ${String(runs).padStart(5)} runs  ${status.padEnd(6)} ${seconds(result.ms)}`,
    )
  }
}
await Promise.all(Array.from({ length: Math.min(options.jobs, plan.length) }, worker))

const failed = results.filter((result) => !result.ok)
const ranOk = results.filter((result) => result.ok).reduce((sum, result) => sum + result.runs, 0)
const total = seconds(Date.now() - startedAt)
if (failed.length === 0) {
  console.log(`model test: PASSED ${ranOk} runs over ${results.length} seeds in ${total}`)
  process.exit(0)
}
for (const result of failed) {
  console.log(`\n--- seed ${result.seed}: vitest exited with ${result.code} ---`)
  console.log(result.output.trimEnd())
}
console.log(
  `\nmodel test: FAILED ${failed.length} of ${results.length} seeds (${ranOk} runs passed) in ${total}`,
)
for (const result of failed) {
  console.log(
    `  ${result.failure ? replayLine(result) : `seed ${result.seed}: no counterexample (see the output above)`}`,
  )
}
process.exit(1)
