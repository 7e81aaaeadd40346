/**
 * Push throughput: how many changes per second `sync:push` applies, for one push of 1,000
 * changes against the same 1,000 changes sent as 1,000 single-change pushes (an outbox drained
 * one change at a time, which is what one transaction per change cost before batching).
 *
 * Two outboxes of 1,000 changes:
 * - `creates`: 1,000 new records (an app used offline for a while);
 * - `edits`: 500 new records, each followed at once by an edit of it (a new note and its first
 *   change), so every record appears twice in the push.
 * In-process calls (no socket); every change must come back `applied`. Each figure is the
 * median of 3 runs after a warm-up, on empty tables each time.
 */
import { createIpc } from '@tidesync/ipc'
import { type Change, createTidesync, noopLogger, type Tidesync, type TidesyncDb } from '@tidesync/server'
import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { todos } from '../src/__tests__/fixtures/schema.js'

const CHANGES = 1000
const RUNS = 3

export type Workload = 'creates' | 'edits'
export const WORKLOADS: Workload[] = ['creates', 'edits']

export interface PushBenchResult {
  workload: Workload
  changes: number
  /** One push carrying every change. */
  batchMs: number
  /** One push per change, each awaited before the next. */
  singleMs: number
}

let runId = 0

function makeChanges(workload: Workload, n: number): Change[] {
  const base = Date.UTC(2026, 0, 1) + ++runId * 10_000_000
  const changes: Change[] = []
  const create = (i: number, uid: string, wall: string): Change => ({
    id: `c${runId}-${i}`,
    model: 'todos',
    uid,
    op: 'create',
    data: { ownerId: `u${i % 50}`, title: `note ${i}`, priority: i % 10 },
    clock: `${wall}-0000-bench`,
  })
  if (workload === 'creates') {
    for (let i = 0; i < n; i++) changes.push(create(i, uuidv7(), new Date(base + i).toISOString()))
    return changes
  }
  for (let i = 0; i < n / 2; i++) {
    const uid = uuidv7()
    const wall = new Date(base + i * 2).toISOString()
    changes.push(create(i, uid, wall))
    changes.push({
      id: `u${runId}-${i}`,
      model: 'todos',
      uid,
      op: 'update',
      patch: { title: `note ${i} (edited)`, done: i % 2 === 0 },
      clock: `${wall}-0001-bench`,
    })
  }
  return changes
}

/** Empties the bench's tables (the records, their metadata, the log, the applied ids, the state). */
export async function empty(db: TidesyncDb): Promise<void> {
  await db.execute(
    sql.raw('TRUNCATE todos, tidesync_meta, tidesync_changes, tidesync_applied, tidesync_state'),
  )
}

function expectApplied(result: Awaited<ReturnType<Tidesync['push']>>, n: number): void {
  const applied = result.outcomes.filter((o) => o.status === 'applied').length
  if (applied !== n)
    throw new Error(`push: ${applied} of ${n} applied: ${JSON.stringify(result.outcomes[0])}`)
}

async function timeRuns(
  db: TidesyncDb,
  workload: Workload,
  run: (changes: Change[]) => Promise<void>,
): Promise<number> {
  await empty(db)
  await run(makeChanges(workload, 100)) // warm-up
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    await empty(db)
    const changes = makeChanges(workload, CHANGES)
    const start = performance.now()
    await run(changes)
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]!
}

export async function runPushBench(kind: string, db: TidesyncDb): Promise<PushBenchResult[]> {
  const ipc = await createIpc({ driver: 'memory' })
  const t = createTidesync({
    db,
    ipc,
    logger: noopLogger,
    maxChangesPerPush: CHANGES,
    models: { todos: { table: todos, counters: ['likes'] } },
  })
  try {
    const results: PushBenchResult[] = []
    for (const workload of WORKLOADS) {
      const batchMs = await timeRuns(db, workload, async (changes) => {
        expectApplied(await t.push({ clientId: 'bench', changes }, {}), changes.length)
      })
      const singleMs = await timeRuns(db, workload, async (changes) => {
        for (const change of changes)
          expectApplied(await t.push({ clientId: 'bench', changes: [change] }, {}), 1)
      })
      results.push({ workload, changes: CHANGES, batchMs, singleMs })
      console.log(
        `  ${kind.padEnd(8)} ${workload.padEnd(7)} one push of ${CHANGES}: ${batchMs.toFixed(0)} ms (${perSecond(batchMs)}/s), ` +
          `${CHANGES} pushes of 1: ${singleMs.toFixed(0)} ms (${perSecond(singleMs)}/s)`,
      )
    }
    return results
  } finally {
    await empty(db)
    await ipc.close()
  }
}

function perSecond(ms: number): number {
  return Math.round((CHANGES * 1000) / ms)
}

/** The `push` entry of results.json: per database, per workload. */
export function pushSummary(results: Record<string, PushBenchResult[]>): Record<string, unknown> {
  const out: Record<string, unknown> = { changes: CHANGES }
  for (const [kind, rows] of Object.entries(results)) {
    const perKind: Record<string, number> = {}
    for (const r of rows) {
      perKind[`${r.workload}.batch.ms`] = Number(r.batchMs.toFixed(1))
      perKind[`${r.workload}.single.ms`] = Number(r.singleMs.toFixed(1))
      perKind[`${r.workload}.batch.changesPerSec`] = perSecond(r.batchMs)
      perKind[`${r.workload}.single.changesPerSec`] = perSecond(r.singleMs)
      perKind[`${r.workload}.speedup`] = Number((r.singleMs / r.batchMs).toFixed(2))
    }
    out[kind] = perKind
  }
  return out
}

export function pushTable(results: Record<string, PushBenchResult[]>): string {
  const lines = [
    `| database | outbox | 1 push of ${CHANGES} | changes/s | ${CHANGES} pushes of 1 | changes/s | speed-up |`,
    '|---|---|---:|---:|---:|---:|---:|',
  ]
  for (const [kind, rows] of Object.entries(results)) {
    for (const r of rows) {
      lines.push(
        `| ${kind} | ${r.workload} | ${r.batchMs.toFixed(0)} ms | ${perSecond(r.batchMs)} | ${r.singleMs.toFixed(0)} ms | ${perSecond(r.singleMs)} | ${(r.singleMs / r.batchMs).toFixed(1)}x |`,
      )
    }
  }
  return lines.join('\n')
}
