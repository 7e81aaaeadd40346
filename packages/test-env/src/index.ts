/**
 * Test-only helpers shared by every package's suites.
 *
 * Real servers only: Redis on REDIS_URL (default redis://127.0.0.1:6379) and PostgreSQL on
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test). Under CI=true a missing server
 * fails the suite; elsewhere the suite skips and prints why.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'

export const isCI = process.env.CI === 'true' || process.env.CI === '1'
export const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const probes = new Map<string, Promise<string | null>>()

/** Resolves to null when Redis answers PING, or to the reason it does not. */
export function probeRedis(url = redisUrl): Promise<string | null> {
  const key = `redis:${url}`
  let probe = probes.get(key)
  if (!probe) {
    probe = (async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 2000,
      })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.ping()
        return null
      } catch (error) {
        return `Redis at ${url} is unreachable (${(error as Error).message})`
      } finally {
        client.disconnect()
      }
    })()
    probes.set(key, probe)
  }
  return probe
}

/** Resolves to null when PostgreSQL accepts a connection, or to the reason it does not. */
export function probePostgres(url = databaseUrl): Promise<string | null> {
  const key = `pg:${url}`
  let probe = probes.get(key)
  if (!probe) {
    probe = (async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
      try {
        await client.connect()
        await client.query('select 1')
        return null
      } catch (error) {
        return `PostgreSQL at ${url} is unreachable (${(error as Error).message})`
      } finally {
        await client.end().catch(() => {})
      }
    })()
    probes.set(key, probe)
  }
  return probe
}

/**
 * Decides whether a suite that needs a server runs. Returns true to run. Under CI a missing
 * server throws (the suite fails); elsewhere it prints the reason and returns false (skip).
 */
export async function requireServer(kind: 'redis' | 'postgres'): Promise<boolean> {
  const reason = kind === 'redis' ? await probeRedis() : await probePostgres()
  if (reason === null) return true
  if (isCI) throw new Error(`${reason}. CI=true requires it: start the server or unset CI.`)
  console.warn(`[tidesync tests] skipping ${kind} suite: ${reason}`)
  return false
}

/** A short random id for key prefixes, database names and file names. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
}

/**
 * Creates a throwaway database on the PostgreSQL server and returns its URL plus a drop
 * function, so suites running in parallel never share tables.
 */
export async function createTestDatabase(
  prefix = 'tidesync',
): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = uniqueId(prefix).toLowerCase()
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  try {
    await admin.query(`create database "${name}"`)
  } finally {
    await admin.end()
  }
  const url = new URL(databaseUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const client = new pg.Client({ connectionString: databaseUrl })
      await client.connect()
      try {
        await client.query(`drop database if exists "${name}" with (force)`)
      } finally {
        await client.end()
      }
    },
  }
}

export type { OwnRedisOptions } from './own-redis.js'
export { freePort, hasRedisServerBinary, OwnRedisServer } from './own-redis.js'
