import pg from 'pg'
import type { Recorder } from './recorder.js'
import { COLUMNS, type ItemRow } from './schema.js'
import type { SimClient } from './sim-client.js'

const LWW_FIELDS = ['owner', 'title', 'done', 'note'] as const

export interface Expected {
  live: Map<string, ItemRow>
  deleted: Set<string>
  /** Acknowledged change ids per client index. */
  ackedByClient: Map<number, Set<string>>
  incrementsAcked: number
  likesAcked: number
  /** The acknowledged likes of records that still exist. */
  likesExpected: number
}

/**
 * What the end state must be, from what the clients pushed and the server acknowledged:
 * a record deleted by any acknowledged change is gone (tombstones win); every other created
 * record exists; each field holds the value of the acknowledged write with the greatest clock
 * (per-field last-write-wins); `likes` is the sum of every acknowledged increment.
 */
export function expectedState(recorder: Recorder): Expected {
  const deleted = new Set<string>()
  const fieldWinner = new Map<string, Map<string, { clock: string; value: unknown }>>()
  const likes = new Map<string, number>()
  const created = new Set<string>()
  const ackedByClient = new Map<number, Set<string>>()
  let incrementsAcked = 0
  let likesAcked = 0
  for (const change of recorder.changes.values()) {
    const ack = recorder.acks.get(change.id)
    if (!ack || ack.status === 'rejected') continue
    let acked = ackedByClient.get(change.client)
    if (!acked) {
      acked = new Set()
      ackedByClient.set(change.client, acked)
    }
    acked.add(change.id)
    switch (change.op) {
      case 'delete':
        deleted.add(change.uid)
        break
      case 'increment':
        incrementsAcked++
        for (const delta of Object.values(change.deltas)) {
          likes.set(change.uid, (likes.get(change.uid) ?? 0) + delta)
          likesAcked += delta
        }
        break
      default: {
        if (change.op === 'create') created.add(change.uid)
        let fields = fieldWinner.get(change.uid)
        if (!fields) {
          fields = new Map()
          fieldWinner.set(change.uid, fields)
        }
        for (const field of LWW_FIELDS) {
          if (!(field in change.fields)) continue
          const current = fields.get(field)
          if (!current || change.clock > current.clock) {
            fields.set(field, { clock: change.clock, value: change.fields[field] })
          }
        }
      }
    }
  }
  const live = new Map<string, ItemRow>()
  for (const uid of created) {
    if (deleted.has(uid)) continue
    const fields = fieldWinner.get(uid)!
    live.set(uid, {
      uid,
      owner: fields.get('owner')?.value as string,
      title: fields.get('title')?.value as string,
      done: (fields.get('done')?.value as boolean) ?? false,
      note: (fields.get('note')?.value as string) ?? '',
      likes: likes.get(uid) ?? 0,
    })
  }
  let likesExpected = 0
  for (const row of live.values()) likesExpected += row.likes

  return { live, deleted, ackedByClient, incrementsAcked, likesAcked, likesExpected }
}

export interface VerifyReport {
  problems: string[]
  liveRecords: number
  deletedRecords: number
  changes: number
  acknowledged: number
  duplicates: number
  rejected: number
  incrementsAcked: number
  likesAcked: number
  /** The acknowledged likes of records that still exist (what the database must hold). */
  likesExpected: number
  likesInDatabase: number
}

function canonical(row: Record<string, unknown>): string {
  return JSON.stringify(COLUMNS.map((column) => row[column]))
}

/**
 * Checks that the database, every client and the recorded acknowledgements agree:
 * - every change a client pushed got an answer, and none was rejected or changed on retry;
 * - the database holds exactly the expected records and values (nothing acknowledged lost,
 *   no counter delta applied twice, no deleted record resurrected), with a tombstone per delete;
 * - the server's applied-id table holds exactly the acknowledged change ids of each client;
 * - every client's local store equals the database.
 */
export async function verify(
  databaseUrl: string,
  recorder: Recorder,
  clients: SimClient[],
  options: {
    /**
     * SQL condition on `items` selecting the records the simulated clients own (other writers
     * share the table in capacity runs). @default every record
     */
    itemsWhere?: string
  } = {},
): Promise<VerifyReport> {
  const problems: string[] = []
  const problem = (message: string) => {
    if (problems.length < 40) problems.push(message)
  }
  const expected = expectedState(recorder)
  let duplicates = 0
  let rejected = 0
  for (const change of recorder.changes.values()) {
    const ack = recorder.acks.get(change.id)
    if (!ack)
      problem(`change ${change.id} (${change.op} ${change.uid} by c${change.client}) was never answered`)
    else if (ack.status === 'rejected') {
      rejected++
      problem(`change ${change.id} (${change.op} ${change.uid}) was rejected: ${ack.code}`)
    } else if (ack.status === 'duplicate') duplicates++
  }
  for (const id of recorder.contentMismatches)
    problem(`change ${id} was pushed again with a different content`)

  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  let rows: ItemRow[]
  let tombstones: Set<string>
  let applied: Array<{ client_id: string; change_id: string }>
  try {
    const where = options.itemsWhere ? ` WHERE ${options.itemsWhere}` : ''
    rows = (await client.query<ItemRow>(`SELECT ${COLUMNS.join(', ')} FROM items${where}`)).rows
    tombstones = new Set(
      (
        await client.query<{ uid: string }>(
          `SELECT uid FROM tidesync_meta WHERE model = 'items' AND deleted_at IS NOT NULL`,
        )
      ).rows.map((r) => r.uid),
    )
    applied = (await client.query('SELECT client_id, change_id FROM tidesync_applied')).rows
  } finally {
    await client.end()
  }

  const database = new Map(rows.map((row) => [row.uid, row]))
  let likesInDatabase = 0
  for (const row of rows) likesInDatabase += row.likes
  for (const [uid, want] of expected.live) {
    const got = database.get(uid)
    if (!got) problem(`record ${uid} (acknowledged create) is missing from the database`)
    else if (
      canonical(got as unknown as Record<string, unknown>) !==
      canonical(want as unknown as Record<string, unknown>)
    ) {
      problem(`record ${uid}: database ${canonical(got as never)} != expected ${canonical(want as never)}`)
      if (got.likes !== want.likes) {
        const increments = [...recorder.changes.values()]
          .filter((c) => c.uid === uid && c.op === 'increment')
          .map((c) => {
            const ack = recorder.acks.get(c.id)
            return `+${c.deltas.likes} by c${c.client} sent ${c.firstSentAt} x${c.sends} ${ack?.status} at ${ack?.at}`
          })
        problem(`  increments of ${uid}: ${increments.join('; ')}`)
      }
    }
  }
  for (const uid of database.keys()) {
    if (expected.deleted.has(uid)) problem(`record ${uid} was deleted (acknowledged) but is in the database`)
    else if (!expected.live.has(uid)) problem(`record ${uid} is in the database but no client created it`)
  }
  for (const uid of expected.deleted) {
    if (!tombstones.has(uid)) problem(`record ${uid} was deleted but has no tombstone`)
  }

  const clientIds = new Map<string, number>()
  for (const sim of clients) clientIds.set(await sim.client.clientId(), sim.index)
  const appliedBy = new Map<number, Set<string>>()
  for (const row of applied) {
    const index = clientIds.get(row.client_id)
    if (index === undefined) continue
    let set = appliedBy.get(index)
    if (!set) {
      set = new Set()
      appliedBy.set(index, set)
    }
    set.add(row.change_id)
  }
  for (const sim of clients) {
    const want = expected.ackedByClient.get(sim.index) ?? new Set<string>()
    const got = appliedBy.get(sim.index) ?? new Set<string>()
    for (const id of want)
      if (!got.has(id)) problem(`${sim.name}: acknowledged change ${id} is not in tidesync_applied`)
    for (const id of got)
      if (!want.has(id)) problem(`${sim.name}: tidesync_applied has ${id}, never acknowledged`)
  }

  const history = (uid: string) =>
    [...recorder.changes.values()]
      .filter((c) => c.uid === uid)
      .map((c) => {
        const ack = recorder.acks.get(c.id)
        return `${c.op}${c.op === 'increment' ? ` +${c.deltas.likes}` : ''} by c${c.client} sent ${c.firstSentAt} x${c.sends} ${ack?.status} at ${ack?.at}`
      })
      .join('; ')
  for (const sim of clients) {
    const local = new Map((await sim.items.find()).map((row) => [row.uid, row as ItemRow]))
    const differing: string[] = []
    for (const uid of new Set([...database.keys(), ...local.keys()])) {
      const mine = local.get(uid)
      const theirs = database.get(uid)
      if (mine && theirs && canonical(mine as never) === canonical(theirs as never)) continue
      differing.push(uid)
    }
    if (differing.length > 0) {
      problem(`${sim.name} differs from the database on ${differing.length} record(s)`)
      for (const uid of differing.slice(0, 3)) {
        const mine = local.get(uid)
        const theirs = database.get(uid)
        problem(
          `  ${uid}: database ${theirs ? canonical(theirs as never) : 'absent'}, local ${mine ? canonical(mine as never) : 'absent'}`,
        )
        problem(`  history: ${history(uid)}`)
      }
    }
  }

  return {
    problems,
    liveRecords: expected.live.size,
    deletedRecords: expected.deleted.size,
    changes: recorder.changes.size,
    acknowledged: [...recorder.acks.values()].filter((a) => a.status !== 'rejected').length,
    duplicates,
    rejected,
    incrementsAcked: expected.incrementsAcked,
    likesAcked: expected.likesAcked,
    likesExpected: expected.likesExpected,
    likesInDatabase,
  }
}
