/**
 * A few real `@tidesync/client`s (Dexie on fake-indexeddb, the harness's `SimClient`) writing
 * beside the protocol-level load, through the deployment's balancer. They own the records whose
 * owner starts with `c` (the `scoped` server gives them exactly those); at the end every one of
 * them must equal the database on those records, and every acknowledged change must be there
 * (the harness's `verify`).
 */
import pg from 'pg'
import { Prng } from '../harness/prng.js'
import { Recorder } from '../harness/recorder.js'
import { SimClient, type UidPool } from '../harness/sim-client.js'
import { type VerifyReport, verify } from '../harness/verify.js'
import { quiesce } from '../harness/workload.js'

/** The records of the real clients, as SQL (the same condition as their scope on the server). */
export const REAL_ITEMS_WHERE = "owner >= 'c' AND owner < 'd'"

export interface RealClientsReport {
  clients: number
  writes: number
  quiesceMs: number
  verify: VerifyReport | null
  failures: string[]
}

export class RealClients {
  private readonly recorder = new Recorder()
  private readonly pool: UidPool = { items: [] }
  private readonly clients: SimClient[]
  private readonly stops: Array<() => void> = []
  private running: Promise<void> | undefined
  private stopped = false
  private writes = 0
  private readonly failures: string[] = []

  constructor(
    url: string,
    count: number,
    private readonly seed: number,
  ) {
    this.clients = Array.from(
      { length: count },
      (_, index) => new SimClient({ index, url, recorder: this.recorder, auth: { role: 'real' } }),
    )
  }

  /** Starts syncing and writing (one write every 100-300 ms per client) until `stop`. */
  async start(): Promise<void> {
    for (const client of this.clients) this.stops.push(client.start())
    await Promise.all(this.clients.map((client) => client.client.ready))
    this.running = Promise.all(this.clients.map((client) => this.drive(client))).then(() => undefined)
  }

  private async drive(client: SimClient): Promise<void> {
    const rng = new Prng(this.seed * 1000 + client.index)
    while (!this.stopped) {
      try {
        if ((await client.step(rng, this.pool)) !== 'skipped') this.writes++
      } catch (error) {
        if (this.failures.length < 10) this.failures.push(`${client.name}: ${(error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, rng.int(100, 300)))
    }
  }

  /** Stops writing, waits until every client is idle and synced, and compares with the database. */
  async finish(
    databaseUrl: string,
    flush: () => Promise<void>,
    timeoutMs: number,
  ): Promise<RealClientsReport> {
    this.stopped = true
    await this.running
    if (this.clients.length === 0) return { clients: 0, writes: 0, quiesceMs: 0, verify: null, failures: [] }
    const quiesceMs = await quiesce(this.clients, timeoutMs)
    await flush()
    const report = await verify(databaseUrl, this.recorder, this.clients, { itemsWhere: REAL_ITEMS_WHERE })
    if (report.problems.length > 0)
      report.problems.push(...(await this.changeLogOf(databaseUrl, report.problems)))
    return {
      clients: this.clients.length,
      writes: this.writes,
      quiesceMs,
      verify: report,
      failures: this.failures,
    }
  }

  /** The server's change log and metadata of the records named in `problems` (diagnostics). */
  private async changeLogOf(databaseUrl: string, problems: string[]): Promise<string[]> {
    const uids = [
      ...new Set(problems.join(' ').match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)),
    ]
    if (uids.length === 0) return []
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    try {
      const lines: string[] = []
      for (const uid of uids.slice(0, 5)) {
        const log = await client.query<{ rev: string; op: string; captured: boolean }>(
          'SELECT rev, op, captured FROM tidesync_changes WHERE uid = $1 ORDER BY rev',
          [uid],
        )
        const meta = await client.query<{ rev: string; deleted_at: Date | null }>(
          'SELECT rev, deleted_at FROM tidesync_meta WHERE uid = $1',
          [uid],
        )
        lines.push(
          `  server log of ${uid}: ${log.rows.map((r) => `${r.rev} ${r.op}${r.captured ? ' (captured)' : ''}`).join(', ')}; meta rev ${meta.rows[0]?.rev} deleted ${meta.rows[0]?.deleted_at?.toISOString() ?? 'no'}`,
        )
      }
      return lines
    } catch (error) {
      return [`  (could not read the change log: ${(error as Error).message})`]
    } finally {
      await client.end()
    }
  }

  async close(): Promise<void> {
    this.stopped = true
    for (const stop of this.stops) stop()
    await Promise.all(this.clients.map((client) => client.close()))
  }
}
