/**
 * What the run's PostgreSQL backends are doing, sampled every 100 ms from `pg_stat_activity`
 * (a wait-event profile): running (`active`, no wait: on CPU or runnable), waiting for a lock
 * (`Lock:advisory` is tidesync's per-model revision lock and per-record locks), flushing WAL
 * (`IO:WALSync`/`WALWrite`), idle inside a transaction (`ClientRead`: waiting for the tidesync
 * server's next statement, a round trip), or idle in the pool. Shares are of all backend
 * samples, so "2.1 busy backends" style figures can be read from `averageBackends`.
 */
import type pg from 'pg'

export interface PgWaitFigures {
  samples: number
  /** Average number of backends of the run's database per sample. */
  averageBackends: number
  /** Share (%) of backend samples per state, largest first. */
  states: Record<string, number>
}

export class PgWaitSampler {
  private readonly counts = new Map<string, number>()
  private samples = 0
  private backends = 0
  private timer: NodeJS.Timeout | undefined
  private busy = false

  constructor(
    private readonly client: pg.Client,
    /** Monitoring backends to leave out. */
    private readonly ownPids: number[],
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.intervalMs)
    this.timer.unref()
  }

  private async sample(): Promise<void> {
    if (this.busy) return
    this.busy = true
    try {
      const { rows } = await this.client.query<Row>(
        `SELECT a.state, a.wait_event_type AS type, a.wait_event AS event,
           (SELECT max(l.classid::bigint) FROM pg_locks l
             WHERE l.pid = a.pid AND l.locktype = 'advisory' AND NOT l.granted) AS waiting_for,
           EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'
             AND l.granted AND l.classid::bigint = ${REVISION_LOCK_CLASS}) AS holds_revision
         FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> ALL($1) AND a.backend_type = 'client backend'`,
        [this.ownPids],
      )
      this.samples++
      this.backends += rows.length
      for (const row of rows) {
        const key = stateOf(row)
        this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
      }
    } catch {
      // A failed sample is skipped.
    } finally {
      this.busy = false
    }
  }

  /** The figures since the last call, and a new window. */
  window(): PgWaitFigures {
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0)
    const states = Object.fromEntries(
      [...this.counts.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([state, n]) => [state, Math.round((n / Math.max(1, total)) * 1000) / 10]),
    )
    const figures = {
      samples: this.samples,
      averageBackends: this.samples > 0 ? Math.round((this.backends / this.samples) * 10) / 10 : 0,
      states,
    }
    this.counts.clear()
    this.samples = 0
    this.backends = 0
    return figures
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

/**
 * The classes of tidesync's advisory locks (first key of `pg_advisory_xact_lock(int, int)`),
 * as @tidesync/server's `db/locks.ts` defines them: a record's lock, a model's revision lock.
 */
const RECORD_LOCK_CLASS = 0x7473_0001
const REVISION_LOCK_CLASS = 0x7473_0002

interface Row {
  state: string | null
  type: string | null
  event: string | null
  waiting_for: string | number | null
  holds_revision: boolean
}

function stateOf(row: Row): string {
  const { state, type, event } = row
  let what: string
  if (state === 'idle') what = 'idle (pool)'
  else if (state === 'idle in transaction') what = 'in transaction, waiting for the server'
  else if (state !== 'active') what = state ?? 'unknown'
  else if (!type) what = 'running (CPU)'
  else if (type === 'Lock' && event === 'advisory') {
    const lock = Number(row.waiting_for)
    what =
      lock === REVISION_LOCK_CLASS
        ? 'waiting for the revision lock'
        : lock === RECORD_LOCK_CLASS
          ? 'waiting for a record lock'
          : 'waiting for an advisory lock'
  } else what = `waiting ${type}:${event}`
  return row.holds_revision ? `holding the revision lock, ${what}` : what
}
