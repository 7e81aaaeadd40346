/**
 * Crash test with real processes: a child (children/crash-child.ts) increments and inserts
 * through a write buffer on the memory IPC driver while this test kills it with SIGKILL (at a
 * random moment, inside a flush transaction, and between a flush's commit and the clearing of
 * its in-flight state), restarts it, and so on; a last child recovers and flushes. Then:
 * - journal: every acknowledged operation is in the database exactly once. The only operations
 *   whose fate is open are those in flight at a kill (called, not yet acknowledged: at most one
 *   per caller per round): each may be in the database, at most once.
 * - checkpoint: nothing is applied twice, and every operation acknowledged before the start of
 *   the round's last completed checkpoint is in the database (the loss is at most what came
 *   after it).
 * The child logs each operation with a synchronous write before and after the call, so the log
 * (unlike a message on a pipe) tells exactly what was acknowledged when the kill came.
 * KEEP_CRASH_DIR=1 keeps the log and the LMDB files (the path is printed) for a post-mortem.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestDatabase, requireServer } from '@tidesync/test-env'
import pg from 'pg'
import { afterAll, describe, expect, test } from 'vitest'
import { CRASH_DDL } from './children/crash-schema.js'
import { killChildren, startChild } from './processes.js'

const CALLERS = 16
const KILL_POINTS = ['random', 'mid-commit', 'random', 'post-commit', 'random'] as const

interface Op {
  round: number
  caller: number
  k: number
  insert: boolean
  intentAt: number
  ackAt: number | undefined
}

interface Log {
  ops: Map<string, Op>
  /** Per round: log position of the start of the last checkpoint that was written (-1: none). */
  safeBefore: number[]
}

function readLog(file: string, rounds: number): Log {
  const ops = new Map<string, Op>()
  const safeBefore = Array.from({ length: rounds }, () => -1)
  const lastStart: number[] = []
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((text, at) => {
      const [kind, r, c, k] = text.split(' ')
      const round = Number(r)
      if (kind === 'i' || kind === 'a') {
        const id = `${round}:${c}:${k}`
        if (kind === 'i') {
          const insert = Number(k) % 4 === 3
          ops.set(id, { round, caller: Number(c), k: Number(k), insert, intentAt: at, ackAt: undefined })
        } else ops.get(id)!.ackAt = at
      } else if (kind === 'S') lastStart[round] = at
      else if (kind === 'C') safeBefore[round] = lastStart[round] ?? -1
      else if (kind === 'x') throw new Error(`the child failed: ${text}`)
    })
  return { ops, safeBefore }
}

const hasPostgres = await requireServer('postgres')

describe.runIf(hasPostgres)('crash test: SIGKILL at random moments and mid-flush, restart, repeat', () => {
  afterAll(killChildren)

  test.concurrent.each(['journal', 'checkpoint'] as const)(
    '%s mode',
    async (mode) => {
      const database = await createTestDatabase(`wbcrash_${mode}`)
      const pool = new pg.Pool({ connectionString: database.url, max: 2 })
      pool.on('error', () => {}) // idle clients terminated by the forced drop at the end
      const dir = mkdtempSync(join(tmpdir(), `wb-crash-${mode}-`))
      try {
        await pool.query(CRASH_DDL)
        await pool.query(`insert into crash_counters (id) select g from generate_series(1, ${CALLERS}) g`)
        const logFile = join(dir, 'ops.log')
        const run = (round: number, point: string) =>
          startChild('crash-child.ts', {
            DATABASE_URL: database.url,
            MODE: mode,
            DIR: join(dir, 'lmdb'),
            LOG_FILE: logFile,
            ROUND: String(round),
            KILL_POINT: point,
            CALLERS: String(CALLERS),
          })

        for (const [round, point] of KILL_POINTS.entries()) {
          const child = run(round, point)
          await child.next('ready')
          if (point === 'random') await sleep(150 + Math.random() * 450)
          else {
            const at = await child.next<{ point: string }>('at', 15_000).catch((e) => {
              throw new Error(
                `round ${round} (${point}): ${e.message}\n${readFileSync(logFile, 'utf8').split('\n').slice(-12).join('\n')}`,
              )
            })
            expect(at).toMatchObject({ point })
          }
          child.process.kill('SIGKILL')
          expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' })
        }
        const last = run(KILL_POINTS.length, 'drain')
        await last.next('drained')
        expect((await last.exited).code).toBe(0)

        const { ops, safeBefore } = readLog(logFile, KILL_POINTS.length)
        const counts = new Map(
          (
            await pool.query<{ op: string; n: number }>(
              'select op, count(*)::int as n from crash_events group by op',
            )
          ).rows.map((r) => [r.op, r.n]),
        )
        const values = new Map(
          (await pool.query<{ id: number; n: string }>('select id, n from crash_counters')).rows.map((r) => [
            r.id,
            Number(r.n),
          ]),
        )
        const deadLetters = await pool.query('select kind, error from tidesync_write_buffer_dead_letters')
        expect(deadLetters.rows).toEqual([])

        const problems: string[] = []
        for (const op of counts.keys())
          if (!ops.has(op)) problems.push(`${op}: in the database, never called`)
        const acked = { ops: 0, safe: 0, inFlight: 0, lost: 0 }
        const perCaller = new Map<number, { acked: number; safe: number; called: number }>()
        for (const [id, op] of ops) {
          const safe = op.ackAt !== undefined && op.ackAt < (safeBefore[op.round] ?? -1)
          if (op.ackAt !== undefined) acked.ops++
          else acked.inFlight++
          if (safe) acked.safe++
          const row = perCaller.get(op.caller) ?? { acked: 0, safe: 0, called: 0 }
          perCaller.set(op.caller, row)
          if (!op.insert) {
            row.called++
            if (op.ackAt !== undefined) row.acked++
            if (safe) row.safe++
            continue
          }
          const n = counts.get(id) ?? 0
          if (n > 1) problems.push(`${id}: inserted ${n} times`)
          if (mode === 'journal' && op.ackAt !== undefined && n !== 1)
            problems.push(`${id}: acknowledged, lost`)
          if (mode === 'checkpoint' && safe && n !== 1) problems.push(`${id}: checkpointed, lost`)
          if (op.ackAt !== undefined && n === 0) acked.lost++
        }
        for (const [caller, row] of perCaller) {
          const value = values.get(caller) ?? 0
          const low = mode === 'journal' ? row.acked : row.safe
          if (value < low)
            problems.push(
              `row ${caller}: ${value} < ${low} (${mode === 'journal' ? 'acknowledged' : 'checkpointed'})`,
            )
          if (value > row.called) problems.push(`row ${caller}: ${value} > ${row.called} increments called`)
          if (mode === 'journal' && value > row.acked + KILL_POINTS.length) {
            problems.push(`row ${caller}: ${value} exceeds acknowledged + one in flight per round`)
          }
        }
        console.log(
          `crash test (${mode}): ${acked.ops} acknowledged ops over ${KILL_POINTS.length} kills, ` +
            `${acked.inFlight} in flight at a kill, ${acked.safe} covered by a checkpoint, ${acked.lost} acknowledged inserts lost`,
        )
        expect(problems).toEqual([])
        expect(acked.ops).toBeGreaterThan(KILL_POINTS.length * 150)
        expect(acked.inFlight).toBeLessThanOrEqual(CALLERS * KILL_POINTS.length)
        if (mode === 'journal') expect(acked.lost).toBe(0)
        if (mode === 'checkpoint') expect(acked.safe).toBeGreaterThan(0)
      } finally {
        await pool.end()
        await database.drop()
        if (!process.env.KEEP_CRASH_DIR) rmSync(dir, { recursive: true, force: true })
        else console.log('kept', dir)
      }
    },
    60_000,
  )
})
