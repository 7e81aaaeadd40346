/**
 * `npm run demo`: starts the demo server on embedded defaults (PGlite in apps/demo/.data, the
 * memory IPC driver, LMDB checkpoints) and prints its URL.
 *
 * Environment (README.md has the table): PORT (0 = a free port; default 3000), HOST, DATABASE_URL
 * (PostgreSQL instead of PGlite), REDIS_URL (Redis instead of the memory driver), REDIS_PREFIX,
 * DEMO_DATA_DIR, DEMO_STATIC_DIR, SERVER_NAME, DEMO_TRACE=1 (print every request), DEMO_SEED=N
 * (N sample notes in an empty database, to watch a long initial sync), DEMO_SQL=0 (no
 * `POST /demo/sql`, the local-only route behind `npm run demo:sql`).
 */
import { type DemoServer, startDemoServer } from './demo-server.js'
import { DEFAULT_PORT, parsePort } from './env.js'
import { seedNotes } from './seed.js'

function portFrom(value: string | undefined): number {
  try {
    return parsePort(value)
  } catch (error) {
    console.error((error as Error).message)
    process.exit(1)
  }
}

const env = process.env
if (env.REDIS_URL && !env.DATABASE_URL) {
  console.warn(
    'REDIS_URL without DATABASE_URL: this server keeps its own PGlite database, so servers sharing the Redis will not share notes. Give every server the same DATABASE_URL.',
  )
}

let server: DemoServer
try {
  server = await startDemoServer({
    port: portFrom(env.PORT),
    host: env.HOST || undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.REDIS_PREFIX || undefined,
    dataDir: env.DEMO_DATA_DIR || undefined,
    staticDir: env.DEMO_STATIC_DIR || undefined,
    serverId: env.SERVER_NAME || undefined,
    trace: Boolean(env.DEMO_TRACE),
    sqlRoute: env.DEMO_SQL !== '0',
  })
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE') {
    console.error(`Port ${env.PORT || DEFAULT_PORT} is in use: try PORT=0 for a free one.`)
  } else {
    console.error('The demo server could not start:', error)
  }
  process.exit(1)
}

const seed = Number(env.DEMO_SEED ?? 0)
if (Number.isInteger(seed) && seed > 0) {
  const added = await seedNotes(server.database.db, seed)
  console.log(
    added
      ? `Added ${seed.toLocaleString('en')} sample notes (DEMO_SEED): open the URL in a new private window to watch the initial sync.`
      : 'DEMO_SEED ignored: the database already has notes.',
  )
}

console.log(`tidesync demo (server ${server.serverId}) is running at ${server.url}`)
console.log(
  `  database: ${server.database.location}; coordinator: ${server.ipc.driver === 'redis' ? `Redis at ${env.REDIS_URL}` : 'memory (this process)'}`,
)
if (env.DEMO_SQL !== '0') {
  const port = server.port === DEFAULT_PORT ? '' : `PORT=${server.port} `
  console.log(
    `  change notes with plain SQL from another terminal: ${port}npm run demo:sql -- "UPDATE notes SET title = 'from SQL' WHERE ..."`,
  )
}
console.log('  open the URL in two windows, then press Ctrl+C to stop')

let stopping = false
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: flushing pending writes and stopping...`)
  server.close().then(
    () => process.exit(0),
    (error) => {
      console.error('Stopping failed:', error)
      process.exit(1)
    },
  )
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
