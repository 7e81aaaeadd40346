import type { Logger } from '@tidesync/protocol'
import type { TidesyncDb } from '../types.js'

export type StopListening = () => Promise<void>

/** What `db.$client` may be: PGlite, a node-postgres pool, or one node-postgres client. */
interface PGliteLike {
  listen(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>>
}
interface PgClientLike {
  query(text: string): Promise<unknown>
  on(event: 'notification', fn: (msg: { channel: string; payload?: string }) => void): unknown
  on(event: 'error' | 'end', fn: (error?: unknown) => void): unknown
}
interface PgPoolLike {
  totalCount: number
  /** pg-pool keeps the client class and the connection options it was made with. */
  Client: new (
    options: unknown,
  ) => PgClientLike & { connect(): Promise<void>; end(): Promise<void> }
  options: unknown
}

/** Reconnect delays of a lost LISTEN connection (ms), the last one repeated. */
const RECONNECT_MS = [100, 500, 2000, 5000]

/**
 * Listens to `channel` (NOTIFY payload: comma-separated model names) on the database behind a
 * drizzle instance: PGlite's own `listen`, or, for a node-postgres pool, a connection of its own
 * opened with the pool's options (LISTEN holds its connection; taking it from the pool would
 * leave the pool one short for good). A lost connection is taken again with a backoff, and
 * `onReconnect` runs then (notifications sent meanwhile are lost: read everything).
 */
export async function listenForCommits(
  db: TidesyncDb,
  channel: string,
  onModels: (models: string[]) => void,
  onReconnect: () => void,
  logger: Logger,
): Promise<StopListening> {
  const client = (db as unknown as { $client?: unknown }).$client
  const split = (payload: string | undefined) => (payload ? payload.split(',') : [])
  if (client && typeof (client as PGliteLike).listen === 'function') {
    const unlisten = await (client as PGliteLike).listen(channel, (payload) => onModels(split(payload)))
    return () => unlisten()
  }
  if (client && 'totalCount' in (client as object) && typeof (client as PgPoolLike).Client === 'function') {
    return listenOnPool(client as PgPoolLike, channel, onModels, onReconnect, logger)
  }
  if (client && typeof (client as PgClientLike).query === 'function') {
    const single = client as PgClientLike
    const handler = (msg: { channel: string; payload?: string }) => {
      if (msg.channel === channel) onModels(split(msg.payload))
    }
    single.on('notification', handler)
    await single.query(`LISTEN "${channel}"`)
    return async () => {
      await single.query(`UNLISTEN "${channel}"`).catch(() => undefined)
    }
  }
  throw new Error('the database client supports no LISTEN')
}

async function listenOnPool(
  pool: PgPoolLike,
  channel: string,
  onModels: (models: string[]) => void,
  onReconnect: () => void,
  logger: Logger,
): Promise<StopListening> {
  let stopped = false
  type Conn = InstanceType<PgPoolLike['Client']>
  let current: Conn | undefined
  let attempt = 0
  let retry: NodeJS.Timeout | undefined

  const connect = async (): Promise<void> => {
    const client = new pool.Client(pool.options)
    client.on('error', () => undefined) // until the handlers below are in place
    try {
      await client.connect()
    } catch (error) {
      await client.end().catch(() => undefined)
      throw error
    }
    let lost = false
    const onLost = (error?: unknown) => {
      if (lost) return
      lost = true
      if (current === client) current = undefined
      void client.end().catch(() => undefined)
      if (stopped) return
      logger.warn('capture reader: the LISTEN connection was lost; reconnecting', error)
      schedule()
    }
    client.on('notification', (msg) => {
      if (msg.channel === channel) onModels(msg.payload ? msg.payload.split(',') : [])
    })
    client.on('error', onLost)
    client.on('end', onLost)
    try {
      await client.query(`LISTEN "${channel}"`)
    } catch (error) {
      lost = true
      await client.end().catch(() => undefined)
      throw error
    }
    current = client
    attempt = 0
  }
  const schedule = () => {
    const delay = RECONNECT_MS[Math.min(attempt++, RECONNECT_MS.length - 1)]!
    retry = setTimeout(() => {
      if (stopped) return
      connect().then(onReconnect, () => {
        if (!stopped) schedule()
      })
    }, delay)
    retry.unref?.()
  }
  await connect()
  return async () => {
    stopped = true
    clearTimeout(retry)
    const client = current
    current = undefined
    if (!client) return
    await client.end().catch(() => undefined)
  }
}
