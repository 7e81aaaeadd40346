import { index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core'

/**
 * The table of deferred writes owed to the buffer (see `deferred.ts`): one row per staged write
 * with counter deltas, inserted in the caller's transaction and deleted once the buffer has the
 * deltas. Its name is the caller's (the server's is `tidesync_handoffs`); the columns are fixed,
 * so rows an older version left stay redeliverable.
 */
export function defineHandoffTable(name: string) {
  return pgTable(
    name,
    {
      /** The receipt prefix of this write (one buffer receipt per column: `<receipt>/<column>`). */
      receipt: text('receipt').primaryKey(),
      /** The caller's name of the group the row belongs to (the server: its model name). */
      model: text('model').notNull(),
      /** The row's key in its table (a one-column primary key, as text). */
      uid: text('uid').notNull(),
      deltas: jsonb('deltas').$type<Record<string, number>>().notNull(),
      createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    },
    (t) => [index(`${name}_record`).on(t.model, t.uid), index(`${name}_created_at`).on(t.createdAt)],
  )
}

export type HandoffTable = ReturnType<typeof defineHandoffTable>

/** One object (table or index) of the hand-off table and its idempotent DDL, in creation order. */
export function handoffSchemaObjects(name: string): Array<{ name: string; statement: string }> {
  return [
    {
      name,
      statement: `CREATE TABLE IF NOT EXISTS "${name}" (
      "receipt" text PRIMARY KEY,
      "model" text NOT NULL,
      "uid" text NOT NULL,
      "deltas" jsonb NOT NULL,
      "created_at" timestamp(3) with time zone NOT NULL DEFAULT now())`,
    },
    {
      name: `${name}_record`,
      statement: `CREATE INDEX IF NOT EXISTS "${name}_record" ON "${name}" ("model", "uid")`,
    },
    {
      name: `${name}_created_at`,
      statement: `CREATE INDEX IF NOT EXISTS "${name}_created_at" ON "${name}" ("created_at")`,
    },
  ]
}
