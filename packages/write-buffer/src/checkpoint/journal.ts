import type { Ipc, IpcEntry } from '@tidesync/ipc'
import type { Database, RootDatabase } from 'lmdb'
import type { OpRecord } from '../flush/plan.js'
import { GroupCommit } from '../store/group-commit.js'
import type { KeyLayout } from '../store/keys.js'
import type { Logger } from '../types.js'
import { syncEnv } from './lmdb-env.js'

/** One LMDB entry per group: `[instance, table, seq of its last operation]` -> the group's JSON text. */
type JournalKey = [instance: string, table: string, lastSeq: number]
type OpBody = OpRecord extends [string, number, ...infer Rest] ? Rest : never

interface InstanceMeta {
  /** The IPC store life this instance's operations were applied to. */
  epoch: string
  prefix: string
  startedAt: number
}

/**
 * The LMDB journal (durability 'journal'). Every operation is written to LMDB before its call
 * resolves. Operations of one table in the same event-loop turn form a group (GroupCommit): one
 * LMDB entry in one commit (keyed by the sequence number of its last operation, so trimming needs
 * no value reads), whose JSON text is then appended to the table's pending `ops` list in one
 * `rpush`, groups in sequence order. Why one entry per group, not per operation: encoding a key
 * and a value per operation, for LMDB and again for the IPC store, cost more than all the rest.
 * Because appends of one instance are applied to the list in order and a flush takes the whole
 * list, each flush covers a prefix of every instance's sequence: the highest sequence number
 * applied is recorded (the watermark) in the same database transaction as the batch.
 *
 * "Written to LMDB" means committed: a killed process (kill -9, a crash) loses nothing
 * acknowledged. With `fsyncIntervalMs` (the default) the file is opened without a disk flush per
 * commit, each group is committed synchronously on this thread (a few microseconds: no disk
 * flush, no hop to LMDB's writer thread, whose round trip bounded the throughput) and the file is
 * flushed to disk on that interval, so a power loss can lose the last interval. Without it
 * ('always'), every commit waits for its disk flush on LMDB's writer thread (much slower, but
 * survives a power loss); never synchronously, which would block the event loop for the flush.
 *
 * Recovery: when the IPC store is a new one (its epoch differs from the one an instance wrote
 * to), the store lost that instance's operations; every operation above the watermark is put
 * back as an in-flight batch. When the store is the same (a cluster worker died, the primary
 * lived), the store still holds them and nothing is replayed.
 */
export class Journal {
  private readonly ops: Database<string, JournalKey>
  private readonly meta: Database<InstanceMeta, string>
  private seq = 0
  private readonly groups = new GroupCommit<OpRecord>((table, records, previous) =>
    this.commitGroup(table, records, previous),
  )
  private readonly trims = new Set<Promise<unknown>>()
  private syncTimer: NodeJS.Timeout | undefined
  private readonly syncCommits: boolean

  constructor(
    private readonly root: RootDatabase,
    private readonly ipc: Ipc,
    private readonly keys: KeyLayout,
    readonly instance: string,
    private readonly logger: Logger,
    fsyncIntervalMs?: number,
  ) {
    this.ops = root.openDB<string, JournalKey>({ name: 'journal-groups' })
    this.meta = root.openDB<InstanceMeta, string>({ name: 'journal-instances' })
    this.syncCommits = fsyncIntervalMs !== undefined
    if (fsyncIntervalMs !== undefined) {
      this.syncTimer = setInterval(() => {
        syncEnv(this.root).catch((error) => this.logger.warn('journal fsync failed', error))
      }, fsyncIntervalMs)
      this.syncTimer.unref()
    }
  }

  /** Stops the periodic disk flush (the environment flushes once more when it is released). */
  stop(): void {
    if (this.syncTimer) clearInterval(this.syncTimer)
    this.syncTimer = undefined
  }

  /** Registers this instance as writing to the store life `epoch`. */
  async start(epoch: string, now: number): Promise<void> {
    await this.meta.put(this.instance, { epoch, prefix: this.keys.prefix, startedAt: now })
  }

  /**
   * Journals one operation, then appends it to the pending list. Resolves, once both are done,
   * with how many operations this process appended to the table since it last started a flush
   * of it (the list holds groups, not operations); rejects (the write is not acknowledged) when
   * either fails.
   */
  append(table: string, body: OpBody): Promise<number> {
    return this.groups.append(table, [this.instance, ++this.seq, ...body] as OpRecord)
  }

  /** A flush of `table` starts in this process: it takes every group appended so far. */
  flushStarted(table: string): void {
    this.groups.reset(table)
  }

  private commitGroup(table: string, records: OpRecord[], previous: Promise<unknown>): Promise<void> {
    const last = records[records.length - 1]![1]
    const text = JSON.stringify(records)
    // The LMDB write may overlap the previous group's rpush; the rpushes stay in sequence order
    // (a flush must always take a prefix of the sequence), even when this write fails.
    const put = this.write([this.instance, table, last], text)
    put.catch(() => undefined)
    return previous
      .then(() => put)
      .then(async () => {
        await this.ipc.rpush(this.keys.pending(table, 'ops'), text)
      })
  }

  private write(key: JournalKey, text: string): Promise<unknown> {
    if (!this.syncCommits) return this.ops.put(key, text)
    try {
      this.ops.putSync(key, text)
      return Promise.resolve()
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Resolves when every operation appended so far is journaled and applied (or failed). */
  async drain(): Promise<void> {
    await this.groups.drain()
    await Promise.all([...this.trims])
  }

  /**
   * Puts back the operations of instances whose store life is over (replay). `watermarks`
   * reads the committed watermarks of one instance per table. Returns the in-flight entries
   * to restore, grouped by table; `markReplayed` must be called once they are restored.
   */
  async collectReplay(
    epoch: string,
    watermarks: (instance: string, tables: string[]) => Promise<Map<string, number>>,
  ): Promise<{ entries: Map<string, IpcEntry[]>; instances: string[]; count: number }> {
    const entries = new Map<string, IpcEntry[]>()
    const instances: string[] = []
    let count = 0
    for (const { key: instance, value } of this.meta.getRange({})) {
      if (instance === this.instance || value.prefix !== this.keys.prefix || value.epoch === epoch) continue
      instances.push(instance)
      const byTable = new Map<string, OpRecord[]>()
      for (const { key, value: text } of this.ops.getRange({
        start: [instance],
        end: [instance, '\uffff'],
      })) {
        const [, table] = key
        const list = byTable.get(table) ?? []
        for (const record of JSON.parse(text) as OpRecord[]) list.push(record)
        byTable.set(table, list)
      }
      const marks = await watermarks(instance, [...byTable.keys()])
      for (const [table, records] of byTable) {
        const mark = marks.get(table) ?? 0
        const open = records.filter((r) => r[1] > mark)
        this.trim(instance, table, mark)
        if (open.length === 0) continue
        count += open.length
        const batch = `!${epoch.slice(0, 13)}${instance.slice(-8)}`
        const list = entries.get(table) ?? []
        list.push({
          key: this.keys.inflight(table, batch, 'ops'),
          type: 'list',
          value: [JSON.stringify(open)],
        })
        entries.set(table, list)
      }
    }
    return { entries, instances, count }
  }

  /** Records that the given instances' operations now live in the store life `epoch`. */
  async markReplayed(instances: string[], epoch: string): Promise<void> {
    for (const instance of instances) {
      const meta = this.meta.get(instance)
      if (!meta) continue
      const empty = this.ops.getKeysCount({ start: [instance], end: [instance, '\uffff'] }) === 0
      if (empty) await this.meta.remove(instance)
      else await this.meta.put(instance, { ...meta, epoch })
    }
  }

  /** Every instance (of this key prefix) with journal entries, for periodic trimming. */
  instancesWithEntries(): string[] {
    const out: string[] = []
    for (const { key, value } of this.meta.getRange({})) {
      if (value.prefix === this.keys.prefix) out.push(key)
    }
    return out
  }

  /** Tables an instance has entries for. */
  tablesOf(instance: string): string[] {
    const tables = new Set<string>()
    for (const key of this.ops.getKeys({ start: [instance], end: [instance, '\uffff'] })) tables.add(key[1])
    return [...tables]
  }

  /** Deletes groups wholly covered by a committed watermark (asynchronously, batched by LMDB). */
  trim(instance: string, table: string, upTo: number): void {
    if (upTo <= 0) return
    const removals: Promise<boolean>[] = []
    for (const key of this.ops.getKeys({ start: [instance, table, 0], end: [instance, table, upTo + 1] })) {
      removals.push(this.ops.remove(key))
    }
    if (removals.length === 0) return
    const done = Promise.all(removals).catch((error) => this.logger.warn('journal trim failed', error))
    this.trims.add(done)
    void done.finally(() => this.trims.delete(done))
  }
}
