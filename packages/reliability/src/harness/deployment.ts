import { Redis } from 'ioredis'
import { Balancer } from './balancer.js'
import type { ServerConfig } from './messages.js'
import { ServerProcess } from './server-handle.js'

export interface DeploymentOptions {
  /** How many server processes. @default 2 */
  servers?: number
  databaseUrl: string
  ipc: ServerConfig['ipc']
  writeBuffer?: Partial<ServerConfig['writeBuffer']>
  /** Extra server options (limits). */
  server?: Partial<
    Pick<
      ServerConfig,
      | 'maxHttpBufferSize'
      | 'maxMessageBytes'
      | 'syncLockWaitMs'
      | 'syncLockTtlSeconds'
      | 'pgConnectTimeoutMs'
      | 'poolSize'
      | 'maxChangesPerTransaction'
      | 'scoped'
    >
  >
}

/**
 * Server processes behind one load balancer, as clients see a deployment: one URL. Servers are
 * started one after the other (each runs the idempotent schema set-up before it listens).
 */
export class Deployment {
  private constructor(
    readonly servers: ServerProcess[],
    readonly balancer: Balancer,
    readonly options: DeploymentOptions,
  ) {}

  static async start(options: DeploymentOptions): Promise<Deployment> {
    const servers: ServerProcess[] = []
    const balancer = new Balancer([])
    try {
      const count = options.servers ?? 2
      for (let i = 0; i < count; i++) {
        servers.push(
          await ServerProcess.start({
            name: `server-${String.fromCharCode(97 + i)}`,
            databaseUrl: options.databaseUrl,
            ipc: options.ipc,
            port: 0,
            writeBuffer: {
              flushInterval: 250,
              maxBackoffMs: 1000,
              checkpointPath: false,
              // A killed server's flush lock frees after this, not after the 30 s default.
              lockTtlSeconds: 5,
              ...options.writeBuffer,
            },
            syncLockTtlSeconds: 5,
            ...options.server,
          }),
        )
      }
      balancer.setBackends(servers.map((server) => server.port))
      await balancer.start()
      return new Deployment(servers, balancer, options)
    } catch (error) {
      await Promise.all(servers.map((server) => server.kill()))
      await balancer.stop()
      throw error
    }
  }

  get url(): string {
    return this.balancer.url
  }

  /** Flushes the write buffer through a live server (pending state is shared through the IPC). */
  async flush(): Promise<void> {
    const live = this.servers.filter((server) => server.alive)
    if (live.length === 0) throw new Error('no live server to flush through')
    for (const server of live) await server.flush()
  }

  /** Which servers run, and the last lines each printed (for failure messages). */
  diagnostics(): string {
    return this.servers
      .map((server) => `${server.name} (${server.alive ? 'running' : 'dead'}):\n${server.handle.tail(15)}`)
      .join('\n')
  }

  async stop(): Promise<void> {
    await this.balancer.stop()
    await Promise.all(this.servers.map((server) => server.stop().catch(() => server.kill())))
  }

  /** Ends every process at once (teardown after a failure). */
  async kill(): Promise<void> {
    await this.balancer.stop()
    await Promise.all(this.servers.map((server) => server.kill()))
  }
}

/** Deletes every key under `prefix` on a Redis (our own key prefix on the shared server only). */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  if (!prefix) throw new Error('refusing to delete an empty prefix')
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true })
  redis.on('error', () => {})
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      cursor = next
      if (keys.length > 0) await redis.del(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}
