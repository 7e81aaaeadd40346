/**
 * The IPC key layout. Everything lives under one prefix, so `dump(prefix)` snapshots it.
 *
 *   {p}P:{table}:inc   hash   pending increments, field = row/column, value = delta
 *   {p}P:{table}:upd   hash   pending updates, field = row/column, value = encoded value (LWW)
 *   {p}P:{table}:rct   hash   pending receipted increments, field = receipt/row/column, value = delta
 *   {p}P:{table}:ins   list   pending inserts (encoded rows), in call order
 *   {p}P:{table}:ops   list   pending operations in journal mode (in call order, with journal seq)
 *   {p}F:{table}:{batch}:{kind}   the same kinds, taken from P by a flush or a checkpoint (`move`);
 *                                 orphan batches add 'att' (hash rowId -> flushes it went unmatched)
 *   {p}G:{table}       seqlock: odd while a flush moves or commits data (readers wait)
 *   {p}epoch           the id of this IPC store's life (tells a restart of the store from a live one)
 *   {p}ckgen           checkpoint generation counter
 *
 * Table ids are URI-encoded (no ':'), batch ids contain no ':'.
 */
export type PendingKind = 'inc' | 'upd' | 'rct' | 'ins' | 'ops' | 'att'
/** What a flush or a checkpoint moves from pending to in flight ('att' only exists in flight). */
export const PENDING_KINDS: readonly PendingKind[] = ['inc', 'upd', 'rct', 'ins', 'ops']
export const ALL_KINDS: readonly PendingKind[] = ['inc', 'upd', 'rct', 'ins', 'ops', 'att']

export class KeyLayout {
  constructor(readonly prefix: string) {}

  pending(table: string, kind: PendingKind): string {
    return `${this.prefix}P:${table}:${kind}`
  }
  pendingPrefix(table?: string): string {
    return table === undefined ? `${this.prefix}P:` : `${this.prefix}P:${table}:`
  }
  inflight(table: string, batch: string, kind: PendingKind): string {
    return `${this.prefix}F:${table}:${batch}:${kind}`
  }
  inflightPrefix(table?: string): string {
    return table === undefined ? `${this.prefix}F:` : `${this.prefix}F:${table}:`
  }
  seqlock(table: string): string {
    return `${this.prefix}G:${table}`
  }
  lock(table: string): string {
    return `${this.prefix}lock:${table}`
  }
  get epoch(): string {
    return `${this.prefix}epoch`
  }
  get checkpointGeneration(): string {
    return `${this.prefix}ckgen`
  }
  get checkpointLock(): string {
    return `${this.prefix}lock-checkpoint`
  }
  get journalLock(): string {
    return `${this.prefix}lock-journal`
  }

  /** Parses `{p}P:{table}:{kind}`. */
  parsePending(key: string): { table: string; kind: PendingKind } | null {
    if (!key.startsWith(`${this.prefix}P:`)) return null
    const [table, kind, ...rest] = key.slice(this.prefix.length + 2).split(':')
    if (!table || !isKind(kind) || rest.length > 0) return null
    return { table, kind }
  }
  /** Parses `{p}F:{table}:{batch}:{kind}`. */
  parseInflight(key: string): { table: string; batch: string; kind: PendingKind } | null {
    if (!key.startsWith(`${this.prefix}F:`)) return null
    const [table, batch, kind, ...rest] = key.slice(this.prefix.length + 2).split(':')
    if (!table || !batch || !isKind(kind) || rest.length > 0) return null
    return { table, batch, kind }
  }
}

function isKind(kind: string | undefined): kind is PendingKind {
  return (ALL_KINDS as readonly string[]).includes(kind ?? '')
}

/** `connection.schema.table`, URI-encoded per part so it holds no ':'. */
export function tableId(connection: string, schema: string | undefined, name: string): string {
  return [connection, schema ?? 'public', name].map(encodeURIComponent).join('.')
}

/** The connection name of a table id. */
export function connectionOf(table: string): string {
  return decodeURIComponent(table.split('.')[0] ?? '')
}

let counter = 0
const TIME_WIDTH = 9

/**
 * A batch id that sorts by creation time: 9 base-36 digits of ms, 4 of a process counter, 8 hex
 * of randomness. Orphan batches append '~' (sorts after their parent, before any later batch);
 * journal replays start with '!' (sort before every batch of the store's new life).
 */
export function newBatchId(now: number): string {
  counter = (counter + 1) % 36 ** 4
  const rand = Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, '0')
  return `${now.toString(36).padStart(TIME_WIDTH, '0')}${counter.toString(36).padStart(4, '0')}${rand}`
}

/** The creation time (ms) encoded in a batch id, or null for an id this module did not make. */
export function batchTime(batch: string): number | null {
  const body = batch.startsWith('!') ? batch.slice(1) : batch
  const time = Number.parseInt(body.slice(0, TIME_WIDTH), 36)
  return Number.isFinite(time) ? time : null
}

/** The id of the batch that carries the unmatched rows of a flush whose newest batch is `batch`. */
export function orphanBatchId(batch: string): string {
  return `${batch}~`
}
