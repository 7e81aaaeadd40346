import { Dexie } from 'dexie'

/** The number of records in a database's table, opened without a schema. */
export async function countStored(dbName: string, table: string): Promise<number> {
  const db = new Dexie(dbName)
  await db.open()
  try {
    return await db.table(table).count()
  } finally {
    db.close()
  }
}

export function deleteDatabase(dbName: string): Promise<void> {
  return Dexie.delete(dbName)
}
