/**
 * Catching up: a client that holds every record of a collection pulls after every record
 * changed, so the whole catch-up comes from the change log (log pages), against the same
 * records loaded from scratch (snapshot pages) in the same run.
 *
 * 20,000 records are created (pushes of 1,000 creates), loaded once from checkpoint "0" to get
 * a log checkpoint, then each run updates all 20,000 (pushes of 1,000 updates) and times:
 * - `logMs`: `sync:pull` from the previous checkpoint, every page (20,000 upserts);
 * - `snapshotMs`: `sync:pull` from "0", every page (the same 20,000 records).
 * Pages of 1,000, in columns (as the client asks). In-process calls (no socket): what is
 * measured is the server's and the database's work. Each figure is the median of 3 runs after a
 * warm-up run.
 */
import { createIpc } from '@tidesync/ipc'
import { type Change, createTidesync, noopLogger, type Tidesync, type TidesyncDb } from '@tidesync/server'
import { v7 as uuidv7 } from 'uuid'
import { todos } from '../src/__tests__/fixtures/schema.js'
import { empty } from './push-bench.js'

const RECORDS = 20_000
const PUSH = 1_000
const PAGE = 1_000
const RUNS = 3

export interface CatchUpResult {
  records: number
  logMs: number
  snapshotMs: number
}

async function pushAll(t: Tidesync, changes: Change[]): Promise<void> {
  for (let i = 0; i < changes.length; i += PUSH) {
    const result = await t.push({ clientId: 'bench', changes: changes.slice(i, i + PUSH) }, {})
    const applied = result.outcomes.filter((o) => o.status === 'applied').length
    if (applied !== Math.min(PUSH, changes.length - i)) throw new Error(`catch-up: only ${applied} applied`)
  }
}

/** Every page from `checkpoint`: the upserts pulled and the checkpoint after the last page. */
async function pullAll(t: Tidesync, checkpoint: string): Promise<{ upserts: number; checkpoint: string }> {
  let upserts = 0
  let cp = checkpoint
  for (;;) {
    const page = await t.pull({ model: 'todos', checkpoint: cp, limit: PAGE, format: 'columns' }, {})
    upserts += page.columns?.rows.length ?? page.upserts.length
    cp = page.checkpoint
    if (!page.hasMore) return { upserts, checkpoint: cp }
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

export async function runCatchUpBench(kind: string, db: TidesyncDb): Promise<CatchUpResult> {
  await empty(db)
  const ipc = await createIpc({ driver: 'memory' })
  const t = createTidesync({
    db,
    ipc,
    logger: noopLogger,
    maxChangesPerPush: PUSH,
    models: { todos: { table: todos, counters: ['likes'] } },
  })
  try {
    const uids = Array.from({ length: RECORDS }, () => uuidv7())
    let wall = Date.UTC(2026, 0, 1)
    const clock = () => `${new Date(++wall).toISOString()}-0000-bench`
    await pushAll(
      t,
      uids.map((uid, i) => ({
        id: `c-${i}`,
        model: 'todos',
        uid,
        op: 'create',
        data: { ownerId: `u${i % 50}`, title: `note ${i}`, priority: i % 10 },
        clock: clock(),
      })),
    )
    let { checkpoint } = await pullAll(t, '0')
    const logTimes: number[] = []
    const snapshotTimes: number[] = []
    for (let run = 0; run <= RUNS; run++) {
      await pushAll(
        t,
        uids.map((uid, i) => ({
          id: `u${run}-${i}`,
          model: 'todos',
          uid,
          op: 'update',
          patch: { title: `note ${i}, edit ${run}`, done: run % 2 === 0 },
          clock: clock(),
        })),
      )
      let start = performance.now()
      const log = await pullAll(t, checkpoint)
      const logMs = performance.now() - start
      if (log.upserts !== RECORDS) throw new Error(`catch-up: the log gave ${log.upserts} upserts`)
      checkpoint = log.checkpoint
      start = performance.now()
      const snapshot = await pullAll(t, '0')
      const snapshotMs = performance.now() - start
      if (snapshot.upserts !== RECORDS) throw new Error(`catch-up: the snapshot gave ${snapshot.upserts}`)
      if (run === 0) continue // warm-up
      logTimes.push(logMs)
      snapshotTimes.push(snapshotMs)
    }
    const result = { records: RECORDS, logMs: median(logTimes), snapshotMs: median(snapshotTimes) }
    console.log(
      `  ${kind.padEnd(8)} catch-up of ${RECORDS} changed records: log pages ${result.logMs.toFixed(0)} ms, ` +
        `snapshot pages ${result.snapshotMs.toFixed(0)} ms (log / snapshot ${(result.logMs / result.snapshotMs).toFixed(2)})`,
    )
    return result
  } finally {
    await empty(db)
    await ipc.close()
  }
}

/** The `catchUp` entry of results.json: per database. */
export function catchUpSummary(results: Record<string, CatchUpResult>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [kind, r] of Object.entries(results)) {
    out[kind] = {
      records: r.records,
      'log.ms': Number(r.logMs.toFixed(1)),
      'snapshot.ms': Number(r.snapshotMs.toFixed(1)),
      'ratio.logPerSnapshot': Number((r.logMs / r.snapshotMs).toFixed(2)),
    }
  }
  return out
}
