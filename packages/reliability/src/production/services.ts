/**
 * The Redis and PostgreSQL a production soak runs on. A fault that restarts one needs a server
 * of our own, as the fault tests use (never the shared ones): a `redis-server` on a spare port
 * with an append-only file fsynced on every write (test-env's `OwnRedisServer`, persistent, so a
 * SIGKILL keeps what Redis acknowledged), and a PostgreSQL initialised into a temporary folder
 * (the harness's `OwnPostgres`). Without that fault the shared server is used, with a throwaway
 * database or key prefix. `close` removes all of it.
 */
import {
  createTestDatabase,
  hasRedisServerBinary,
  OwnRedisServer,
  databaseUrl as sharedDatabaseUrl,
  redisUrl as sharedRedisUrl,
  uniqueId,
} from '@tidesync/test-env'
import pg from 'pg'
import { dropRedisPrefix } from '../harness/deployment.js'
import { canRunPostgres, OwnPostgres } from '../harness/own-postgres.js'

export interface Services {
  redisUrl: string
  keyPrefix: string
  databaseUrl: string
  /** Set when Redis is our own (the `redis` fault restarts it). */
  redis: OwnRedisServer | null
  /** Set when PostgreSQL is our own (the `postgres` fault stops and starts it). */
  postgres: OwnPostgres | null
  describe: { redis: string; postgres: string }
  close(): Promise<void>
}

/** Why the services a run needs cannot be had here, or null. */
export function missingBinaries(needs: { ownRedis: boolean; ownPostgres: boolean }): string | null {
  if (needs.ownRedis && !hasRedisServerBinary)
    return 'the redis fault needs a redis-server binary on the PATH (or leave it out: --faults kill,postgres)'
  if (needs.ownPostgres && !canRunPostgres)
    return 'the postgres fault needs initdb and pg_ctl (or leave it out: --faults kill,redis)'
  return null
}

/**
 * Starts what the run needs. `onClose` gets the function that removes it all at once (before
 * anything starts, so that an interrupted start-up is cleaned up too).
 */
export async function startServices(
  needs: { ownRedis: boolean; ownPostgres: boolean },
  onClose?: (close: () => Promise<void>) => void,
): Promise<Services> {
  const cleanups: Array<() => Promise<void> | void> = []
  const close = async () => {
    // Each cleanup runs once, the last started first.
    for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop())
      await Promise.resolve(cleanup()).catch(() => undefined)
  }
  onClose?.(close)
  try {
    const keyPrefix = `${uniqueId('rel_prod')}:`
    let redis: OwnRedisServer | null = null
    let redisUrl = sharedRedisUrl
    if (needs.ownRedis) {
      const own = await OwnRedisServer.start({ persistent: true })
      redis = own
      redisUrl = own.url
      cleanups.push(() => own.stop())
    } else {
      cleanups.push(() => dropRedisPrefix(sharedRedisUrl, keyPrefix))
    }
    let postgres: OwnPostgres | null = null
    let databaseUrl: string
    if (needs.ownPostgres) {
      const own = await OwnPostgres.start()
      postgres = own
      cleanups.push(() => own.destroy())
      const admin = new pg.Client({ connectionString: own.url() })
      await admin.connect()
      await admin.query('CREATE DATABASE soak')
      await admin.end()
      databaseUrl = own.url('soak')
    } else {
      const database = await createTestDatabase('rel_prod')
      cleanups.push(() => database.drop())
      databaseUrl = database.url
    }
    return {
      redisUrl,
      keyPrefix,
      databaseUrl,
      redis,
      postgres,
      describe: {
        redis: redis
          ? `own redis-server on ${redisUrl} (appendonly, appendfsync always)`
          : `shared Redis ${sharedRedisUrl}, key prefix ${keyPrefix}`,
        postgres: postgres
          ? `own PostgreSQL (initdb, fsync off) on 127.0.0.1:${postgres.port}`
          : `shared PostgreSQL ${new URL(sharedDatabaseUrl).host}, throwaway database`,
      },
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
