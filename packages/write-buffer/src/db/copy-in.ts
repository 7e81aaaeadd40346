/**
 * `COPY ... FROM` on the connection of a drizzle transaction: the fastest way to put many rows
 * into PostgreSQL (about twice the rows per second of a multi-row `INSERT ... SELECT` here; the
 * README's Benchmark section has the figures).
 *
 * - node-postgres: `COPY ... FROM STDIN` through `pg-copy-streams`, loaded on first use. Without
 *   it (not installed), there is no COPY and the flush sends multi-row INSERTs.
 * - PGlite: `COPY ... FROM '/dev/blob'` with the text as the query's `blob`.
 * - any other driver: no COPY.
 *
 * Why reach into drizzle's session: drizzle has no COPY, and its transaction object keeps the
 * driver client it runs on in `session.client` (not a public API: when the shape is not found,
 * there is simply no COPY). Duck-typed, so neither `pg` nor PGlite is imported here.
 */

/** Sends one COPY statement (`... FROM STDIN` text format) and its data, in pieces. Resolves once applied. */
export type CopyIn = (statement: string, data: string[]) => Promise<void>

/** The parts of the `pg-copy-streams` module used here. */
interface CopyStreams {
  from(text: string): CopyStream
}

/** A `pg-copy-streams` COPY FROM stream (a node Writable). */
interface CopyStream {
  write(chunk: string): boolean
  end(): void
  once(event: 'drain' | 'finish' | 'close', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  destroyed: boolean
}

interface NodePgClientLike {
  query(stream: CopyStream): CopyStream
  connection: { stream: unknown }
}

interface PgliteLike {
  query(text: string, params: unknown[], options: { blob: Blob }): Promise<unknown>
}

const ENTITY_KIND = Symbol.for('drizzle:entityKind')
/** Characters of COPY data per write to the stream (each write is a CopyData message). */
const WRITE_SIZE = 64 * 1024

let copyStreams: Promise<CopyStreams | undefined> | undefined
/** What the import of `pg-copy-streams` gave, once it settled (undefined: failed or pending). */
let loadedCopyStreams: CopyStreams | undefined

/** `pg-copy-streams`, or undefined when it cannot be loaded (then node-postgres has no COPY). */
function loadCopyStreams(): Promise<CopyStreams | undefined> {
  copyStreams ??= import('pg-copy-streams').then(
    (module) => {
      const from =
        (module as { from?: unknown }).from ?? (module as { default?: { from?: unknown } }).default?.from
      loadedCopyStreams = typeof from === 'function' ? { from: from as CopyStreams['from'] } : undefined
      return loadedCopyStreams
    },
    () => undefined,
  )
  return copyStreams
}

/**
 * Whether a flush on the drizzle database `db` will COPY (see `copyInOf`), answered at once: on
 * node-postgres, once `pg-copy-streams` is loaded (`preloadCopy` starts that; until then, no).
 */
export function copySupported(db: unknown): boolean {
  const session = sessionOf(db)
  if (!session) return false
  if (session.kind === 'PgliteSession') return isPglite(session.client) && typeof Blob === 'function'
  if (session.kind === 'NodePgSession') return loadedCopyStreams !== undefined
  return false
}

/** Starts loading what COPY needs on `db`, so `copySupported` soon says yes where it can. */
export function preloadCopy(db: unknown): void {
  if (sessionOf(db)?.kind === 'NodePgSession') void loadCopyStreams()
}

/** The driver client under a drizzle database or transaction, and its session's kind. */
function sessionOf(executor: unknown): { kind: string; client: unknown } | undefined {
  const session = (executor as { session?: { client?: unknown; constructor?: unknown } } | null)?.session
  if (!session || typeof session !== 'object') return undefined
  const kind = (session.constructor as { [ENTITY_KIND]?: unknown } | undefined)?.[ENTITY_KIND]
  return typeof kind === 'string' ? { kind, client: session.client } : undefined
}

function isNodePgClient(client: unknown): client is NodePgClientLike {
  const c = client as Partial<NodePgClientLike> | null
  // A checked-out client (a transaction's), not a Pool: it has the protocol connection.
  return !!c && typeof c.query === 'function' && !!c.connection && typeof c.connection === 'object'
}

function isPglite(client: unknown): client is PgliteLike {
  const c = client as { query?: unknown; exec?: unknown } | null
  return !!c && typeof c.query === 'function' && typeof c.exec === 'function'
}

/**
 * How to COPY on the connection of `tx` (a drizzle transaction), or undefined when that driver
 * has none here (then the caller sends INSERT statements).
 */
export async function copyInOf(tx: unknown): Promise<CopyIn | undefined> {
  const session = sessionOf(tx)
  if (!session) return undefined
  const { kind, client } = session
  if (kind === 'NodePgSession' && isNodePgClient(client)) {
    const streams = await loadCopyStreams()
    return streams ? (statement, data) => copyNodePg(streams, client, statement, data) : undefined
  }
  if (kind === 'PgliteSession' && isPglite(client) && typeof Blob === 'function') {
    return async (statement, data) => {
      await client.query(`${statement} from '/dev/blob'`, [], { blob: new Blob(data) })
    }
  }
  return undefined
}

/** Streams `data` into `COPY ... FROM STDIN`; resolves once PostgreSQL applied it, rejects with its error. */
function copyNodePg(
  streams: CopyStreams,
  client: NodePgClientLike,
  statement: string,
  data: string[],
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false
    const stream = client.query(streams.from(`${statement} from stdin`))
    stream.on('error', (error) => {
      failed = true
      reject(error)
    })
    stream.once('finish', () => resolve())
    let next = 0
    // Writes about WRITE_SIZE characters at a time (pieces are often small: one turn's rows),
    // waiting for 'drain' when the socket is full; stops at an error (the backend refused a
    // row: the stream is gone, and so is the COPY).
    const pump = () => {
      while (next < data.length) {
        if (failed || stream.destroyed) return
        let text = data[next++] as string
        while (next < data.length && text.length < WRITE_SIZE) text += data[next++] as string
        if (!stream.write(text)) {
          stream.once('drain', pump)
          return
        }
      }
      if (!failed && !stream.destroyed) stream.end()
    }
    pump()
  })
}
