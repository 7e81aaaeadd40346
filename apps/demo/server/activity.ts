import { randomUUID } from 'node:crypto'
import type { Ipc, Json } from '@tidesync/ipc'
import type { TidesyncDb } from '@tidesync/server'
import type { WriteBuffer } from '@tidesync/write-buffer'
import { desc } from 'drizzle-orm'
import type { ActivityEntry } from '../shared/events.js'
import { type ActivityAction, activity } from '../shared/schema.js'

/** Entries kept in the IPC list for windows that open (the database keeps all of them). */
const RECENT = 50

export interface ActivityLogOptions {
  ipc: Ipc
  db: TidesyncDb
  writeBuffer: WriteBuffer
  /** Called with new entries from any server (IPC pub/sub), to send to this server's sockets. */
  onEntries: (entries: ActivityEntry[]) => void
  /**
   * Repeats of the same action by the same person on the same note within this many seconds
   * count once (typing in a note saves it many times).
   * @default 20
   */
  quietSeconds?: number
}

/**
 * The activity feed. Each entry is inserted through the write buffer (queued in the IPC store,
 * written 1,000 rows per statement at the next flush), pushed to the recent list in the IPC
 * store, and announced on an IPC channel so every demo server shows it at once.
 */
export class ActivityLog {
  private readonly channel = 'demo:activity'
  private readonly recentKey = 'demo:activity:recent'
  private unsubscribe: (() => Promise<void>) | undefined

  constructor(private readonly options: ActivityLogOptions) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.options.ipc.subscribe(this.channel, (message) => {
      this.options.onEntries([message as unknown as ActivityEntry])
    })
  }

  /** Records what `who` did to a note (unless they did the same a moment ago). */
  async record(who: string, action: ActivityAction, note: { uid: string; title: string }): Promise<void> {
    const { ipc, writeBuffer } = this.options
    const quiet = `demo:activity:quiet:${action}:${note.uid}:${who}`
    if ((await ipc.incrBy(quiet, 1)) > 1) return
    await ipc.expire(quiet, this.options.quietSeconds ?? 20)
    const at = new Date()
    const id = randomUUID()
    const noteTitle = note.title.slice(0, 120)
    await writeBuffer.table(activity).insert({ id, at, who, action, noteUid: note.uid, noteTitle })
    const entry: ActivityEntry = { id, at: at.toISOString(), who, action, noteUid: note.uid, noteTitle }
    await ipc.rpush(this.recentKey, entry as unknown as Json)
    await ipc.ltrim(this.recentKey, -RECENT, -1)
    await ipc.publish(this.channel, entry as unknown as Json)
  }

  /** The latest entries, newest first: from the IPC list, or from the database after a restart. */
  async recent(limit = 30): Promise<ActivityEntry[]> {
    const listed = await this.options.ipc.lrange<Json>(this.recentKey, -limit, -1)
    if (listed.length > 0) return (listed as unknown as ActivityEntry[]).reverse()
    const rows = await this.options.db.select().from(activity).orderBy(desc(activity.at)).limit(limit)
    return rows.map((row) => ({ ...row, at: row.at.toISOString() }))
  }

  async close(): Promise<void> {
    await this.unsubscribe?.()
  }
}
