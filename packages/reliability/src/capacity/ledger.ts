/**
 * What the database must hold for the protocol-level load, from what the server acknowledged:
 * every acknowledged change id is in `tidesync_applied`; each record exists once its create was
 * acknowledged; each field holds the value of the acknowledged write with the greatest clock;
 * `likes` is the sum of the acknowledged increments. A change whose push failed or was never
 * answered may or may not have been applied: its record is then "uncertain" and only checked
 * for existence (when its create was acknowledged).
 */
import type { Change, ChangeOutcome } from '@tidesync/server/protocol'
import pg from 'pg'

const FIELDS = ['owner', 'title', 'done', 'note'] as const
type Field = (typeof FIELDS)[number]

interface ExpectedRecord {
  created: boolean
  fields: Partial<Record<Field, { clock: string; value: unknown }>>
  likes: number
  uncertain: boolean
}

export interface LedgerReport {
  /** Change ids acknowledged (applied or duplicate). */
  acknowledged: number
  /** Changes refused for good (must stay 0: the load only sends valid changes). */
  rejected: number
  /** Changes whose push failed or got no answer (their records are checked for existence only). */
  unresolved: number
  recordsChecked: number
  uncertainRecords: number
  problems: string[]
}

export class Ledger {
  private readonly records = new Map<string, ExpectedRecord>()
  private readonly ackedIds = new Map<string, string[]>()
  private readonly rejections: string[] = []
  private rejected = 0
  private unresolved = 0
  private acknowledged = 0

  private record(uid: string): ExpectedRecord {
    let record = this.records.get(uid)
    if (!record) {
      record = { created: false, fields: {}, likes: 0, uncertain: false }
      this.records.set(uid, record)
    }
    return record
  }

  /** One outcome of a pushed change. */
  settle(clientId: string, change: Change, outcome: ChangeOutcome | undefined): void {
    if (!outcome || outcome.id !== change.id) {
      this.fail(change)
      return
    }
    if (outcome.status === 'rejected') {
      this.rejected++
      if (this.rejections.length < 10)
        this.rejections.push(`${change.op} ${change.uid}: ${outcome.error.code} ${outcome.error.message}`)
      return
    }
    this.acknowledged++
    let ids = this.ackedIds.get(clientId)
    if (!ids) {
      ids = []
      this.ackedIds.set(clientId, ids)
    }
    ids.push(change.id)
    const record = this.record(change.uid)
    if (change.op === 'increment') {
      record.likes += change.deltas.likes ?? 0
      return
    }
    if (change.op === 'delete') throw new Error('the load generator does not delete')
    if (change.op === 'create') record.created = true
    const values = change.op === 'create' ? change.data : change.patch
    for (const field of FIELDS) {
      if (!(field in values)) continue
      const current = record.fields[field]
      if (!current || change.clock > current.clock)
        record.fields[field] = { clock: change.clock, value: values[field] }
    }
  }

  /** A change whose push failed (an error answer, a timeout, a lost connection). */
  fail(change: Change): void {
    this.unresolved++
    this.record(change.uid).uncertain = true
  }

  /** Compares the database with what was acknowledged. `owners` selects the load's records. */
  async verify(databaseUrl: string, isLoadOwner: (owner: string) => boolean): Promise<LedgerReport> {
    const problems: string[] = [...this.rejections.map((r) => `rejected: ${r}`)]
    const problem = (message: string) => {
      if (problems.length < 40) problems.push(message)
    }
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    let rows: Array<{ uid: string; owner: string; title: string; done: boolean; note: string; likes: number }>
    let applied: Map<string, Set<string>>
    try {
      rows = (await client.query('SELECT uid, owner, title, done, note, likes FROM items')).rows
      applied = new Map()
      const { rows: appliedRows } = await client.query<{ client_id: string; change_id: string }>(
        'SELECT client_id, change_id FROM tidesync_applied WHERE client_id = ANY($1)',
        [[...this.ackedIds.keys()]],
      )
      for (const row of appliedRows) {
        let set = applied.get(row.client_id)
        if (!set) {
          set = new Set()
          applied.set(row.client_id, set)
        }
        set.add(row.change_id)
      }
    } finally {
      await client.end()
    }
    for (const [clientId, ids] of this.ackedIds) {
      const got = applied.get(clientId) ?? new Set<string>()
      const missing = ids.filter((id) => !got.has(id))
      if (missing.length > 0)
        problem(
          `${clientId}: ${missing.length} acknowledged change id(s) not in tidesync_applied, e.g. ${missing[0]}`,
        )
    }
    const database = new Map(rows.filter((row) => isLoadOwner(row.owner)).map((row) => [row.uid, row]))
    let checked = 0
    let uncertain = 0
    for (const [uid, want] of this.records) {
      const got = database.get(uid)
      if (want.uncertain) uncertain++
      if (!want.created) {
        if (!want.uncertain) problem(`record ${uid}: changes acknowledged but its create never was`)
        continue
      }
      if (!got) {
        problem(`record ${uid} (acknowledged create) is missing from the database`)
        continue
      }
      if (want.uncertain) continue
      checked++
      const expected = {
        owner: want.fields.owner?.value,
        title: want.fields.title?.value,
        done: want.fields.done?.value ?? false,
        note: want.fields.note?.value ?? '',
        likes: want.likes,
      }
      const actual = { owner: got.owner, title: got.title, done: got.done, note: got.note, likes: got.likes }
      if (JSON.stringify(actual) !== JSON.stringify(expected))
        problem(
          `record ${uid}: database ${JSON.stringify(actual)} != acknowledged ${JSON.stringify(expected)}`,
        )
    }
    for (const uid of database.keys()) {
      if (!this.records.has(uid)) problem(`record ${uid} is in the database but the load never wrote it`)
    }
    return {
      acknowledged: this.acknowledged,
      rejected: this.rejected,
      unresolved: this.unresolved,
      recordsChecked: checked,
      uncertainRecords: uncertain,
      problems,
    }
  }
}
