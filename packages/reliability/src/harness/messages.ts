/**
 * The messages between a test and the processes it starts (a tidesync server, a cluster
 * primary and its workers). Every one carries `rel: true`, so the cluster IPC driver, which
 * shares the worker channel, never mistakes them for its own (and vice versa).
 */

/** How a server process is configured (passed as JSON in the RELIABILITY_SERVER env var). */
export interface ServerConfig {
  /** A human name for logs ("server-a"). */
  name: string
  databaseUrl: string
  ipc:
    | { driver: 'redis'; url: string; keyPrefix: string; commandTimeoutMs?: number }
    | { driver: 'memory' }
    | { driver: 'cluster' }
  /** Port to listen on (0: random; a cluster worker shares its primary's port). */
  port: number
  writeBuffer: {
    flushInterval: number
    maxBackoffMs: number
    durability?: 'checkpoint' | 'journal'
    /** LMDB directory (memory/cluster drivers), or false. */
    checkpointPath: string | false
    checkpointInterval?: number
    /** TTL of the flush lock (frees the lock of a killed process). @default 30 */
    lockTtlSeconds?: number
  }
  /** socket.io's maxHttpBufferSize. @default 1e6 */
  maxHttpBufferSize?: number
  /** tidesync's maxMessageBytes. @default half of maxHttpBufferSize */
  maxMessageBytes?: number
  /** tidesync's syncLockWaitMs. @default 15000 */
  syncLockWaitMs?: number
  /** tidesync's syncLockTtlSeconds (frees the sync lock of a killed process). @default 30 */
  syncLockTtlSeconds?: number
  /** node-postgres pool: connect timeout (ms). @default 3000 */
  pgConnectTimeoutMs?: number
  /** node-postgres pool: most connections. @default 8 */
  poolSize?: number
  /** tidesync's maxChangesPerTransaction. @default the server's (250) */
  maxChangesPerTransaction?: number
  /**
   * Authenticate sockets and scope `items` per user (capacity runs): the handshake's `auth` is
   * `{ user, group }` (the user sees and writes the items owned by `user` or `group`) or
   * `{ role: 'real' }` (the items whose owner starts with `c`: the simulated clients'). A
   * socket without either is refused.
   * @default false (every socket accepted, no scope)
   */
  scoped?: boolean
}

/** What a server process reports about itself. */
export interface ServerStats {
  pid: number
  heapUsed: number
  rss: number
  /** Flushes of the write buffer that committed at least one batch. */
  flushes: number
  /** Time (epoch ms) of the last committed flush. */
  lastFlushAt: number
  /** Time (epoch ms) of the last completed checkpoint's start. */
  lastCheckpointStartAt: number
  bufferErrors: number
  /** Warnings and errors the libraries logged (first ones kept). */
  logs: string[]
  logCount: number
  /** Buffered writes not flushed yet (increments/updates/inserts/journal ops in the IPC store). */
  pendingWrites: number
  /** Sockets connected now. */
  sockets: number
  /** Sockets the server disconnected itself (e.g. a violation policy). */
  serverDisconnects: number
  /** Live subscriptions on this server's sockets. */
  subscriptions: number
  /** Requests being handled / waiting for a slot of their socket, now. */
  requestsRunning: number
  requestsQueued: number
  /** Queries sent to PostgreSQL (through the pool) since start-up. */
  pgQueries: number
  /** IPC calls (write buffer and tidesync) by method since start-up. */
  ipcCalls: Record<string, number>
}

/**
 * Parent -> child requests; the child answers `{ rel, type: 'reply', id, result | error }`.
 * `worker` routes a request through a cluster primary to one of its workers.
 */
export type Request = { rel: true; id: number; worker?: number } & (
  | { type: 'stats'; gc?: boolean }
  | { type: 'flush' }
  | { type: 'close' }
  /** Arm a crash: the process SIGKILLs itself at that point of its next flush. */
  | { type: 'arm'; crash: 'in-flush-after-commit' }
  /** To a cluster primary: fork one more worker; answers `{ worker, pid }` once it serves. */
  | { type: 'fork' }
)

export type RequestType = Request['type']

/** Child -> parent messages. */
export type Report =
  | {
      rel: true
      type: 'ready'
      port: number
      pid: number
      worker?: number
      /** From a cluster primary: its workers. */
      workers?: Array<{ worker: number; pid: number }>
    }
  | { rel: true; type: 'reply'; id: number; result?: unknown; error?: string; worker?: number }
  | { rel: true; type: 'fatal'; error: string; worker?: number }
  | {
      rel: true
      type: 'worker-exit'
      worker: number
      pid: number
      code: number | null
      signal: string | null
    }

export function isRel(message: unknown): message is { rel: true; type: string } {
  return typeof message === 'object' && message !== null && (message as { rel?: unknown }).rel === true
}
