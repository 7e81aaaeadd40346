/**
 * @tidesync/client in Node on fake-indexeddb against a real @tidesync/server, side by side with
 * its baselines and with RxDB, all measured in one run:
 *
 *   npm run bench -w @tidesync/client        (tsx --conditions=source bench/client.bench.ts)
 *   npm run bench:1m -w @tidesync/client     (the 1,000,000-record initial sync alone, no peer)
 *
 * The server runs in its own process (as a deployment does: the client never shares its thread
 * with the server), on PostgreSQL when DATABASE_URL answers (a throwaway database), else PGlite
 * (`BENCH_DB=pglite` forces it); `results.json` says which. Every case runs in a fresh process
 * of its own, so its peak memory is its own and no case slows the next one down; cases of one
 * run are interleaved with their baselines, and every figure is the median of `BENCH_RUNS` runs
 * (default 3) with its spread (min, max, each run): the machine is shared and noisy.
 *
 * 1. Initial sync (`cases/initial-sync.ts`, `cases/rxdb-peer.ts`) of BENCH_SIZES records
 *    (default 10,000 and 100,000): tidesync against the server; tidesync against the same pages
 *    replayed by an in-process server (a server as cheap as the peer's); a plain Dexie `bulkPut` of the same rows, 1,000
 *    per call (the local write floor); the same pages over a bare socket, not stored (the
 *    server + wire floor); RxDB 17's replication into Dexie over socket.io (the peer). Wall time,
 *    records/s, the process's CPU time and its peak RSS.
 * 2. Live changes (`cases/live-changes.ts`): a change committed by another client, until the
 *    receiving client stored it and its `find$` emitted (server commit -> emission); bursts; the
 *    writer's own echo.
 * 3. Local queries (`cases/local-queries.ts`): `find$` with `orderBy` + `limit` over 100,000
 *    records, its re-emission after one write, and a local write's latency to its own `find$`
 *    against a bare Dexie `liveQuery`.
 *
 * Ratios are baseline time / tidesync time (2: twice as fast as the baseline; 0.5: half as
 * fast). Prints a summary and writes bench/results.json, keeping the sizes and sections this run
 * did not measure (the 1M run, the Chromium figures). fake-indexeddb is far slower than a
 * browser's IndexedDB (see the README's Performance section): compare the ratios, not the
 * absolute numbers.
 *
 * Env: BENCH_RUNS, BENCH_SIZES, BENCH_PEER=off (skip RxDB), BENCH_CASES (default
 * `initial,live,queries`), BENCH_DB.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { runCase } from './lib/child.js'
import { type ServerHandle, startServerProcess } from './lib/server-handle.js'
import { perSecond, round, type Summary, summarize } from './lib/stats.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const SIZES = (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number)
const PEER = process.env.BENCH_PEER !== 'off'
const CASES = new Set((process.env.BENCH_CASES ?? 'initial,live,queries').split(','))
const WARM = 2000
const resultsFile = fileURLToPath(new URL('./results.json', import.meta.url))

type Json = Record<string, unknown>

interface Sample {
  ms: number
  cpuMs: number
  peakRssMb: number
}

/** Median and spread of each measure of a list of samples. */
function summary(samples: Sample[], count: number): Json {
  const ms = summarize(samples.map((s) => s.ms))
  return {
    ms,
    recordsPerSec: perSecond(count, ms.median),
    cpuMs: summarize(samples.map((s) => s.cpuMs)),
    peakRssMb: summarize(
      samples.map((s) => s.peakRssMb),
      0,
    ),
  }
}

const ratio = (baseline: Summary, ours: Summary) => round(baseline.median / ours.median)

async function initialSync(server: ServerHandle, results: Json): Promise<void> {
  const section: Json = {}
  for (const count of SIZES) {
    const projectId = `bench-${count}`
    const args = { url: server.url, projectId, count, warmProjectId: 'bench-warm', warmCount: WARM }
    const samples: Record<string, Sample[]> = {
      tidesync: [],
      tidesyncReplayed: [],
      dexieBulkPut: [],
      rawPull: [],
      rxdb: [],
    }
    for (let run = 0; run < RUNS; run++) {
      // Rotate the order, so no case always runs right after the same other one.
      const order = ['tidesync', 'tidesyncReplayed', 'dexieBulkPut', 'rawPull', ...(PEER ? ['rxdb'] : [])]
      for (let i = 0; i < run % order.length; i++) order.push(order.shift()!)
      for (const name of order) {
        const sample =
          name === 'rxdb'
            ? await runCase<Sample>('rxdb-peer.ts', { count, warmCount: WARM, liveCount: 100 })
            : await runCase<Sample>('initial-sync.ts', {
                ...args,
                mode: {
                  tidesync: 'tidesync',
                  tidesyncReplayed: 'replay',
                  dexieBulkPut: 'dexie',
                  rawPull: 'pull',
                }[name],
              })
        samples[name]!.push(sample)
        console.log(`  initial sync ${count} run ${run + 1}: ${name} ${Math.round(sample.ms)} ms`)
      }
    }
    const entry: Json = {
      records: count,
      tidesync: summary(samples.tidesync!, count),
      tidesyncReplayed: summary(samples.tidesyncReplayed!, count),
      dexieBulkPut: summary(samples.dexieBulkPut!, count),
      rawPull: summary(samples.rawPull!, count),
    }
    const ms = (name: string) => summarize(samples[name]!.map((s) => s.ms))
    const cpu = (name: string) => summarize(samples[name]!.map((s) => s.cpuMs))
    const ratios: Json = {
      'dexieBulkPut/tidesync': ratio(ms('dexieBulkPut'), ms('tidesync')),
      'dexieBulkPut/tidesyncReplayed': ratio(ms('dexieBulkPut'), ms('tidesyncReplayed')),
      'rawPull/tidesync': ratio(ms('rawPull'), ms('tidesync')),
      'cpu.dexieBulkPut/tidesync': ratio(cpu('dexieBulkPut'), cpu('tidesync')),
    }
    if (PEER) {
      entry.rxdb = summary(samples.rxdb!, count)
      ratios['rxdb/tidesync'] = ratio(ms('rxdb'), ms('tidesync'))
      ratios['rxdb/tidesyncReplayed'] = ratio(ms('rxdb'), ms('tidesyncReplayed'))
      ratios['cpu.rxdb/tidesync'] = ratio(cpu('rxdb'), cpu('tidesync'))
      entry.rxdbLive100Ms = summarize(samples.rxdb!.map((s) => (s as Sample & { liveMs: number }).liveMs))
    }
    entry.ratios = ratios
    section[count] = { measuredAt: new Date().toISOString(), ...entry }
  }
  results.initialSync = section
}

async function liveChanges(server: ServerHandle, results: Json): Promise<void> {
  const samples: Json[] = []
  for (let run = 0; run < RUNS; run++) {
    samples.push(await runCase<Json>('live-changes.ts', { url: server.url }))
    console.log(`  live changes run ${run + 1}: p50 ${(samples.at(-1)!.commitToEmission as Json).p50Ms} ms`)
  }
  results.liveChanges = mergeRuns(samples)
}

async function localQueries(server: ServerHandle, results: Json): Promise<void> {
  const samples: Json[] = []
  for (let run = 0; run < RUNS; run++) {
    samples.push(
      await runCase<Json>('local-queries.ts', { url: server.url, projectId: 'bench-100000', count: 100_000 }),
    )
    console.log(`  local queries run ${run + 1}`)
  }
  results.localQueries = mergeRuns(samples)
}

/** Per numeric leaf of several runs' results: the median and spread; other leaves from the first run. */
function mergeRuns(runs: Json[]): Json {
  const first = runs[0]!
  const out: Json = {}
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number')
      out[key] = summarize(
        runs.map((run) => run[key] as number),
        2,
      )
    else if (value && typeof value === 'object' && !Array.isArray(value))
      out[key] = mergeRuns(runs.map((run) => run[key] as Json))
    else out[key] = value
  }
  return out
}

function printSummary(results: Json, prefix = ''): void {
  for (const [key, value] of Object.entries(results)) {
    if (value && typeof value === 'object' && 'median' in value) {
      const s = value as Summary
      console.log(`${prefix}${key}: ${s.median} (${s.min}-${s.max})`)
    } else if (value && typeof value === 'object' && !Array.isArray(value))
      printSummary(value as Json, `${prefix}${key}.`)
    else console.log(`${prefix}${key}: ${JSON.stringify(value)}`)
  }
}

async function main(): Promise<void> {
  const previous = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Json) : {}
  const sets = [
    { projectId: 'bench-warm', count: WARM },
    ...SIZES.map((count) => ({ projectId: `bench-${count}`, count })),
  ]
  if (CASES.has('queries') && !SIZES.includes(100_000))
    sets.push({ projectId: 'bench-100000', count: 100_000 })
  console.log(`seeding ${sets.map((s) => s.count).join(', ')} records...`)
  const server = await startServerProcess(sets)
  const results: Json = {
    node: process.version,
    date: new Date().toISOString(),
    server: `its own process, ${server.database}`,
    runs: RUNS,
    loadAverageAtStart: loadavg().map((value) => round(value)),
  }
  try {
    if (CASES.has('initial')) await initialSync(server, results)
    if (CASES.has('live')) await liveChanges(server, results)
    if (CASES.has('queries')) await localQueries(server, results)
  } finally {
    await server.close()
  }
  results.loadAverageAtEnd = loadavg().map((value) => round(value))
  // Sizes and sections this run did not measure (the 1M run, the Chromium figures) keep their
  // earlier figures; each initial-sync size says when it was measured.
  if (previous.initialSync || results.initialSync)
    results.initialSync = { ...(previous.initialSync as Json), ...(results.initialSync as Json) }
  for (const [key, value] of Object.entries(previous)) if (!(key in results)) results[key] = value
  console.log('')
  printSummary(results)
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`\nwrote ${resultsFile}`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
