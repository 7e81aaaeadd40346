import { and, eq, inArray, type SQL, sql } from 'drizzle-orm'
import type { PgTable } from 'drizzle-orm/pg-core'
import { tagFlushTransaction } from '../db/capture-tag.js'
import { TableMeta } from '../store/table-meta.js'
import type { AnyPgDatabase, Logger } from '../types.js'
import { defineHandoffTable, type HandoffTable } from './handoff-table.js'
import type { TableBuffer } from './table-buffer.js'

/** Hand-off rows handed over again per query. */
const SWEEP_BATCH = 500

/** Pauses between the attempts of a refused delivery's direct write to the table. */
const DIRECT_WRITE_BACKOFF_MS = [25, 100, 250, 500] as const

/** The part of the buffer deferred writes go through. @internal */
export interface DeferredTarget {
  table(table: PgTable): Pick<TableBuffer<PgTable>, 'where' | 'redeliver' | 'claimReceipts' | 'incrementMany'>
}

/** The buffer receipt of one column of a hand-off. */
export function receiptOf(receipt: string, column: string): string {
  return `${receipt}/${column}`
}

/**
 * The hand-off rows of deferred writes (what committed transactions still owe the buffer) and
 * the two ways they are paid: given to the buffer again with their receipts (`redeliver`), or
 * written straight to the table in a transaction that claims the receipts (`writeDirectly`).
 */
export class HandoffRows {
  readonly handoffs: HandoffTable
  private readonly metas = new Map<PgTable, TableMeta>()

  constructor(
    name: string,
    private readonly buffer: DeferredTarget,
    private readonly db: AnyPgDatabase,
    private readonly resolve: (group: string) => PgTable | undefined,
    private readonly logger: Logger,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.handoffs = defineHandoffTable(name)
  }

  /**
   * Inserts the rows of staged writes in the caller's transaction: one statement with the rows
   * as one JSON parameter (its cost does not grow with the rows, unlike a multi-row VALUES).
   */
  async insert(
    tx: unknown,
    rows: Array<{ receipt: string; model: string; uid: string; deltas: Record<string, number> }>,
  ): Promise<void> {
    if (rows.length === 0) return
    await (tx as AnyPgDatabase).execute(
      sql`insert into ${this.handoffs} (receipt, model, uid, deltas) select receipt, model, uid, deltas from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(receipt text, model text, uid text, deltas jsonb)`,
    )
  }

  /**
   * Hands over again the rows older than `minAgeMs`, oldest first, a batch at a time; returns
   * how many.
   */
  async redeliverOlder(minAgeMs: number): Promise<number> {
    const { handoffs } = this
    let total = 0
    for (;;) {
      const rows = await this.db
        .select()
        .from(handoffs)
        .where(sql`${handoffs.createdAt} <= now() - make_interval(secs => ${minAgeMs / 1000})`)
        .orderBy(handoffs.createdAt)
        .limit(SWEEP_BATCH)
      if (rows.length === 0) return total
      await this.redeliver(rows)
      total += rows.length
      if (rows.length < SWEEP_BATCH) return total
    }
  }

  /** Deletes hand-off rows the buffer has taken (a row left over is only handed over again, harmlessly). */
  async forget(receipts: string[]): Promise<void> {
    const { handoffs } = this
    try {
      await this.db.delete(handoffs).where(inArray(handoffs.receipt, receipts))
    } catch (error) {
      this.logger.warn(
        'could not delete handed-over write buffer hand-off rows (they will be handed over again)',
        error,
      )
    }
  }

  private metaOf(table: PgTable): TableMeta {
    let meta = this.metas.get(table)
    if (!meta) {
      meta = new TableMeta(table, 'default', undefined, 'id')
      this.metas.set(table, meta)
    }
    return meta
  }

  /**
   * The fallback of a delivery the buffer refused (its IPC unreachable), and of a redelivery:
   * one transaction that claims the deltas' receipts (so the buffer skips any that reached it),
   * adds the claimed deltas and sets the fields with one `UPDATE` of the row, and deletes the
   * hand-off row; retried with a short backoff, still under the row's in-flight mark, so that
   * a committed write is not lost while the process lives.
   */
  async writeDirectly(
    table: PgTable,
    write: { key: string; receipt?: string },
    fields: Record<string, unknown> | undefined,
    deltas: Record<string, number>,
  ): Promise<void> {
    const { handoffs } = this
    const columns = Object.keys(deltas)
    if (!fields && columns.length === 0 && !write.receipt) return
    const meta = this.metaOf(table)
    const keyColumn = meta.keyColumns[0]!.column
    for (let attempt = 0; ; attempt++) {
      try {
        await this.db.transaction(async (tx) => {
          await tx.execute(tagFlushTransaction)
          const set: Record<string, unknown> = { ...(fields ?? {}) }
          if (write.receipt && columns.length > 0) {
            const fresh = await this.buffer.table(table).claimReceipts(
              tx,
              columns.map((column) => receiptOf(write.receipt!, column)),
            )
            for (const column of columns) {
              if (!fresh.has(receiptOf(write.receipt, column))) continue
              set[column] = sql`${meta.column(column).column} + ${deltas[column]!}` as SQL
            }
          }
          if (write.receipt) await tx.delete(handoffs).where(eq(handoffs.receipt, write.receipt))
          if (Object.keys(set).length > 0) await tx.update(table).set(set).where(eq(keyColumn, write.key))
        })
        return
      } catch (error) {
        if (attempt >= DIRECT_WRITE_BACKOFF_MS.length) throw error
        await this.sleep(DIRECT_WRITE_BACKOFF_MS[attempt]!)
      }
    }
  }

  /** Hands over again what is owed for some rows (their marks expired in flight). */
  async redeliverRows(group: string, keys: string[]): Promise<void> {
    const { handoffs } = this
    const rows = await this.db
      .select()
      .from(handoffs)
      .where(and(eq(handoffs.model, group), inArray(handoffs.uid, keys)))
    if (rows.length > 0) await this.redeliver(rows)
  }

  /**
   * Gives hand-off rows to the buffer again (receipts it applied already are skipped, those
   * still pending are not counted twice) and deletes them; when the buffer refuses, writes them
   * to the table directly (claiming their receipts).
   */
  async redeliver(rows: Array<HandoffTable['$inferSelect']>): Promise<void> {
    const byName = new Map<string, typeof rows>()
    for (const row of rows) {
      const list = byName.get(row.model)
      if (list) list.push(row)
      else byName.set(row.model, [row])
    }
    for (const [group, list] of byName) {
      const table = this.resolve(group)
      if (!table) {
        this.logger.error(`write buffer hand-off rows of unknown model ${group} are left in place`)
        continue
      }
      const items = list.flatMap((row) =>
        Object.entries(row.deltas).map(([column, delta]) => ({
          key: row.uid,
          column: column as never,
          delta,
          receipt: receiptOf(row.receipt, column),
        })),
      )
      try {
        await this.buffer.table(table).redeliver(items)
        await this.forget(list.map((row) => row.receipt))
      } catch (error) {
        this.logger.warn(`write buffer refused a redelivery of ${group}: written to the table instead`, error)
        for (const row of list) {
          await this.writeDirectly(table, { key: row.uid, receipt: row.receipt }, undefined, row.deltas)
        }
      }
      this.logger.warn(`handed over ${list.length} counter write(s) of ${group} left by a stopped server`)
    }
  }
}
