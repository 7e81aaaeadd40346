import type { BenchDatabase, RawTransaction } from './databases.js'

/** The rows of the insert cases: what the buffered case queues, and what the baselines insert. */
export interface EventRow {
  kind: string
  userId: number
  payload: { i: number }
}

/**
 * One way to insert many rows without the buffer, straight on the driver in one transaction:
 * from the JavaScript rows to the commit (encoding included). Returns the statements it sent.
 */
export interface BulkForm {
  name: string
  databases: BenchDatabase['name'][]
  run(tx: RawTransaction, rows: EventRow[]): Promise<number>
}

const TARGET = 'bench_events (kind, user_id, payload)'

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const SPECIAL = /[\\\n\r\t]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const escapeCopy = (text: string) =>
  SPECIAL.test(text) ? text.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c] as string) : text

/** COPY text format, one piece per 1,000 rows. */
function copyText(rows: EventRow[]): string[] {
  return chunks(rows, 1000).map((piece) => {
    let text = ''
    for (const row of piece)
      text += `${escapeCopy(row.kind)}\t${row.userId}\t${escapeCopy(JSON.stringify(row.payload))}\n`
    return text
  })
}

function unnest(size: number): BulkForm {
  return {
    name: `INSERT ... SELECT FROM unnest, ${size.toLocaleString('en-US')} rows/statement`,
    databases: ['postgres', 'pglite'],
    async run(tx, rows) {
      const parts = chunks(rows, size)
      for (const part of parts) {
        await tx.query(`insert into ${TARGET} select * from unnest($1::text[], $2::int[], $3::jsonb[])`, [
          part.map((r) => r.kind),
          part.map((r) => r.userId),
          part.map((r) => JSON.stringify(r.payload)),
        ])
      }
      return parts.length
    },
  }
}

function recordset(size: number): BulkForm {
  return {
    name: `INSERT ... SELECT FROM jsonb_to_recordset, ${size.toLocaleString('en-US')} rows/statement`,
    databases: ['postgres', 'pglite'],
    async run(tx, rows) {
      const parts = chunks(rows, size)
      for (const part of parts) {
        await tx.query(
          `insert into ${TARGET} select v.kind, v."userId", v.payload from jsonb_to_recordset($1::jsonb) as v(kind text, "userId" integer, payload jsonb)`,
          [JSON.stringify(part)],
        )
      }
      return parts.length
    },
  }
}

const copyFromStdin: BulkForm = {
  name: 'COPY FROM STDIN (pg-copy-streams), 1 statement',
  databases: ['postgres'],
  async run(tx, rows) {
    if (!tx.copyFromStdin) throw new Error('no COPY FROM STDIN on this database')
    await tx.copyFromStdin(`copy ${TARGET}`, copyText(rows))
    return 1
  },
}

const copyFromBlob: BulkForm = {
  name: `COPY FROM '/dev/blob', 10,000 rows/statement`,
  databases: ['pglite'],
  async run(tx, rows) {
    const parts = chunks(rows, 10_000)
    for (const part of parts)
      await tx.query(`copy ${TARGET} from '/dev/blob'`, [], { blob: new Blob(copyText(part)) })
    return parts.length
  },
}

/** Every form measured; the best one (highest median) of a database is its baseline. */
export const BULK_FORMS: BulkForm[] = [
  unnest(1000),
  recordset(1000),
  recordset(10_000),
  copyFromStdin,
  copyFromBlob,
]
