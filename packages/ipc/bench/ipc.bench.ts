/**
 * IPC throughput: `incrBy` and `hset` ops/s with 1 and 64 concurrent callers on every driver,
 * and raw ioredis doing the same commands (INCRBY; HSET with a JSON-encoded value) in the same
 * run as the Redis driver's peer.
 *
 *   npm run bench -w @tidesync/ipc          (tsx --conditions=source bench/ipc.bench.ts)
 *
 * Each case runs for BENCH_CASE_MS (default 1200 ms) after a short warm-up; the Redis driver
 * and raw ioredis alternate over 4 rounds (BENCH_CASE_MS / 4 each) and keep their best round,
 * so a noisy neighbour hurts both alike. Cluster: the primary owns the store, 2 forked workers each run the
 * callers (`cluster.<op>.c64` = 64 callers in each of the 2 workers), ops/s summed.
 *
 * Prints a table and writes bench/results.json: `{ "<driver>.<op>.c<n>": opsPerSecond, ... }`,
 * plus `redis-vs-raw.<op>.c<n>` ratios.
 *
 * Env: REDIS_URL (default redis://127.0.0.1:6379; the Redis cases are skipped when it is
 * unreachable), BENCH_CASE_MS, BENCH_SKIP (comma list of drivers to skip).
 */
import cluster from 'node:cluster'
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { Redis } from 'ioredis'

type Op = 'incrBy' | 'hset'
type Call = (i: number) => Promise<unknown>

const OPS: Op[] = ['incrBy', 'hset']
const CONCURRENCY = [1, 64]
const CASE_MS = Number(process.env.BENCH_CASE_MS ?? 1200)
const WARMUP_MS = Math.min(200, CASE_MS / 4)
const WORKERS = 2
/** The Redis driver and raw ioredis alternate this many times per case; each keeps its best. */
const ROUNDS = 4
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean))
/** hset writes rotate over this many fields, so the hash stays small. */
const FIELDS = Array.from({ length: 64 }, (_, i) => `f${i}`)

/** Message between the bench primary and its cluster workers (tagged: the IPC driver shares the channel). */
type BenchMessage =
  | { tidesyncBench: 'ready' }
  | { tidesyncBench: 'run'; op: Op; concurrency: number; ms: number; key: string }
  | { tidesyncBench: 'done'; ops: number; elapsedMs: number }
  | { tidesyncBench: 'error'; message: string }

/**
 * Runs `concurrency` callers in a loop for `ms`; returns completed calls and the time taken.
 * Callers read the clock every 32 calls: a timer could not stop them, since a driver that
 * answers on a microtask (memory) never lets the event loop reach its timers.
 */
async function measure(
  call: Call,
  concurrency: number,
  ms: number,
): Promise<{ ops: number; elapsedMs: number }> {
  let ops = 0
  const started = performance.now()
  const end = started + ms
  const caller = async (seed: number) => {
    let i = seed
    for (let n = 1; ; n++) {
      await call(i)
      i += concurrency
      ops++
      if ((n & 31) === 0 && performance.now() >= end) return
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, seed) => caller(seed)))
  return { ops, elapsedMs: performance.now() - started }
}

function ipcCall(ipc: Ipc, op: Op, key: string): Call {
  if (op === 'incrBy') return () => ipc.incrBy(key, 1)
  return (i) => ipc.hset(key, { [FIELDS[i % FIELDS.length]!]: i })
}

function rawCall(redis: Redis, op: Op, key: string): Call {
  if (op === 'incrBy') return () => redis.incrby(key, 1)
  return (i) => redis.hset(key, FIELDS[i % FIELDS.length]!, JSON.stringify(i))
}

const rate = ({ ops, elapsedMs }: { ops: number; elapsedMs: number }) => (ops / elapsedMs) * 1000

async function opsPerSecond(call: Call, concurrency: number, ms = CASE_MS): Promise<number> {
  await measure(call, concurrency, WARMUP_MS)
  return rate(await measure(call, concurrency, ms))
}

const results: Record<string, number> = {}
const record = (driver: string, op: Op, concurrency: number, value: number) => {
  results[`${driver}.${op}.c${concurrency}`] = Math.round(value)
}

async function benchMemory(): Promise<void> {
  const ipc = await createIpc({ driver: 'memory' })
  for (const op of OPS) {
    for (const concurrency of CONCURRENCY) {
      record('memory', op, concurrency, await opsPerSecond(ipcCall(ipc, op, `bench:${op}`), concurrency))
    }
  }
  await ipc.close()
}

async function benchRedis(): Promise<void> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  probe.on('error', () => {})
  try {
    await probe.connect()
  } catch (error) {
    console.warn(`skipping redis cases: ${REDIS_URL} is unreachable (${(error as Error).message})`)
    return
  }
  const run = `${Date.now().toString(36)}`
  const keyPrefix = `tidesync-bench:${run}:`
  const ipc = await createIpc({ driver: 'redis', url: REDIS_URL, keyPrefix })
  // The peer: a plain ioredis client with auto-pipelining, as an app would use it directly.
  const raw = new Redis(REDIS_URL, { enableAutoPipelining: true })
  const rawPrefix = `tidesync-bench-raw:${run}:`
  try {
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const rawOp = rawCall(raw, op, `${rawPrefix}${op}`)
        const driverOp = ipcCall(ipc, op, op)
        await measure(rawOp, concurrency, WARMUP_MS)
        await measure(driverOp, concurrency, WARMUP_MS)
        let bestRaw = 0
        let bestDriver = 0
        for (let round = 0; round < ROUNDS; round++) {
          const ms = CASE_MS / ROUNDS
          bestRaw = Math.max(bestRaw, rate(await measure(rawOp, concurrency, ms)))
          bestDriver = Math.max(bestDriver, rate(await measure(driverOp, concurrency, ms)))
        }
        record('raw-ioredis', op, concurrency, bestRaw)
        record('redis', op, concurrency, bestDriver)
        results[`redis-vs-raw.${op}.c${concurrency}`] = Math.round((bestDriver / bestRaw) * 100) / 100
      }
    }
  } finally {
    await ipc.del(...OPS)
    await probe.del(...OPS.map((op) => `${rawPrefix}${op}`))
    await ipc.close()
    await raw.quit()
    await probe.quit()
  }
}

async function benchCluster(): Promise<void> {
  // The primary owns the store; created before the fork so workers find it ready.
  const ipc = await createIpc({ driver: 'cluster' })
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), silent: false })
  const workers = Array.from({ length: WORKERS }, () => cluster.fork({ TIDESYNC_BENCH_WORKER: '1' }))
  const waitFor = <T extends BenchMessage['tidesyncBench']>(worker: (typeof workers)[number], type: T) =>
    new Promise<Extract<BenchMessage, { tidesyncBench: T }>>((resolve, reject) => {
      const onMessage = (message: BenchMessage) => {
        if (message?.tidesyncBench === 'error') reject(new Error(`worker: ${message.message}`))
        if (message?.tidesyncBench !== type) return
        worker.off('message', onMessage)
        resolve(message as Extract<BenchMessage, { tidesyncBench: T }>)
      }
      worker.on('message', onMessage)
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code}`)))
    })
  try {
    await Promise.all(workers.map((worker) => waitFor(worker, 'ready')))
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const runOnce = async (ms: number) => {
          const done = workers.map((worker) => waitFor(worker, 'done'))
          for (const worker of workers) {
            worker.send({
              tidesyncBench: 'run',
              op,
              concurrency,
              ms,
              key: `bench:${op}`,
            } satisfies BenchMessage)
          }
          const replies = await Promise.all(done)
          const ops = replies.reduce((sum, reply) => sum + reply.ops, 0)
          return (ops / Math.max(...replies.map((reply) => reply.elapsedMs))) * 1000
        }
        await runOnce(WARMUP_MS)
        record('cluster', op, concurrency, await runOnce(CASE_MS))
      }
    }
  } finally {
    for (const worker of workers) {
      worker.removeAllListeners('exit')
      worker.kill()
    }
    await ipc.close()
  }
}

/** A cluster worker: its own cluster IPC instance, running whatever case the primary asks for. */
async function clusterWorker(): Promise<void> {
  const ipc = await createIpc({ driver: 'cluster' })
  process.on('message', (message: BenchMessage) => {
    if (message?.tidesyncBench !== 'run') return
    measure(ipcCall(ipc, message.op, message.key), message.concurrency, message.ms).then(
      ({ ops, elapsedMs }) =>
        process.send?.({ tidesyncBench: 'done', ops, elapsedMs } satisfies BenchMessage),
      (error: Error) =>
        process.send?.({ tidesyncBench: 'error', message: error.message } satisfies BenchMessage),
    )
  })
  process.send?.({ tidesyncBench: 'ready' } satisfies BenchMessage)
}

function printTable(): void {
  const rows: string[][] = [['driver', 'op', 'callers', 'ops/s', 'vs raw ioredis']]
  for (const driver of ['memory', 'cluster', 'redis', 'raw-ioredis']) {
    for (const op of OPS) {
      for (const concurrency of CONCURRENCY) {
        const value = results[`${driver}.${op}.c${concurrency}`]
        if (value === undefined) continue
        const ratio =
          driver === 'redis' ? `${results[`redis-vs-raw.${op}.c${concurrency}`]?.toFixed(2)}x` : ''
        const callers = driver === 'cluster' ? `${concurrency} x ${WORKERS} workers` : String(concurrency)
        rows.push([driver, op, callers, value.toLocaleString('en-US'), ratio])
      }
    }
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)))
  for (const row of rows) console.log(row.map((cell, col) => cell.padEnd(widths[col]!)).join('  '))
}

async function main(): Promise<void> {
  console.log(
    `tidesync ipc bench: ${CASE_MS} ms per case, node ${process.version}, ${availableParallelism()} CPUs, redis ${REDIS_URL}`,
  )
  if (!SKIP.has('memory')) await benchMemory()
  if (!SKIP.has('cluster')) await benchCluster()
  if (!SKIP.has('redis')) await benchRedis()
  printTable()
  const file = fileURLToPath(new URL('./results.json', import.meta.url))
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`wrote ${file}`)
}

if (cluster.isPrimary) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
} else {
  clusterWorker().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
