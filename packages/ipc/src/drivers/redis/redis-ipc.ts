import { BaseIpc } from '../../base-ipc.js'
import type { CommandArgs, CommandName, CommandResult } from '../../commands.js'
import type { RedisIpcOptions } from '../../types.js'
import { invalidArgument } from '../../validate.js'
import { RedisConnection } from './connection.js'
import { Keyspace } from './keyspace.js'
import { type RedisCommand, type RedisTarget, redisCommands } from './redis-commands.js'

/** `RedisIpc.create` options: those of `createIpc({ driver: 'redis' })`, `driver` optional. */
export type RedisIpcCreateOptions = Omit<RedisIpcOptions, 'driver'> & { driver?: 'redis' }

const ignore = (): void => {}

/**
 * The `redis` driver: the IPC API on one Redis server through ioredis.
 *
 * - Commands go through one connection with auto-pipelining (commands issued in the same
 *   event-loop turn share one write); subscriptions through a second connection opened on
 *   the first `subscribe`, with each message fanned out locally to every handler once.
 * - Each command is one entry of `redis-commands.ts`: a plain Redis command where one command
 *   is the whole operation (INCRBY, HSET, RPUSH, ...), a Lua script for every compound one
 *   (locks, move, hgetdel, dump; see `scripts.ts`), MULTI for restore.
 * - Keys, locks and channels live under `keyPrefix` (see `keyspace.ts`); values are JSON text
 *   (see `codec.ts`).
 * - During an outage commands wait up to `commandTimeoutMs`, then fail with
 *   `IpcUnavailableError` (see `connection.ts`).
 *
 * @example
 * const ipc = await RedisIpc.create({ url: 'redis://127.0.0.1:6379', keyPrefix: 'myapp:' })
 * await ipc.set('greeting', { text: 'hello' }, 60)
 * await ipc.close()
 */
export class RedisIpc extends BaseIpc {
  readonly driver = 'redis' as const
  /** The key prefix in use (`tidesync:` unless set). */
  readonly keyPrefix: string
  private readonly keyspace: Keyspace
  private readonly connection: RedisConnection
  /** What the command entries work with. */
  private readonly target: RedisTarget
  private readonly url: string
  private readonly commandTimeoutMs: number
  private subscriber: RedisConnection | undefined

  /**
   * Connects to Redis and returns the driver. Rejects with `IpcUnavailableError` at once when
   * Redis cannot be reached (one attempt, bounded by `commandTimeoutMs`): a wrong URL is
   * reported at start-up instead of retried forever.
   */
  static async create(options: RedisIpcCreateOptions = {}): Promise<RedisIpc> {
    const ipc = new RedisIpc(options)
    await ipc.connection.connect(true)
    return ipc
  }

  private constructor(options: RedisIpcCreateOptions) {
    super(options)
    const url = options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
    const keyPrefix = options.keyPrefix ?? 'tidesync:'
    const commandTimeoutMs = options.commandTimeoutMs ?? 5000
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw invalidArgument(`url must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
    }
    if (typeof keyPrefix !== 'string') throw invalidArgument('keyPrefix must be a string')
    if (!(Number.isFinite(commandTimeoutMs) && commandTimeoutMs > 0)) {
      throw invalidArgument('commandTimeoutMs must be a positive number of milliseconds')
    }
    this.url = url
    this.keyPrefix = keyPrefix
    this.commandTimeoutMs = commandTimeoutMs
    this.keyspace = new Keyspace(keyPrefix)
    this.connection = new RedisConnection({
      url,
      name: 'tidesync-ipc',
      commandTimeoutMs,
      autoPipelining: true,
      stringNumbers: true,
      logger: this.logger,
    })
    this.target = { connection: this.connection, redis: this.connection.client, keyspace: this.keyspace }
  }

  // ---- commands ----------------------------------------------------------------------------

  protected exec<K extends CommandName>(name: K, args: CommandArgs<K>): Promise<CommandResult<K>> {
    return (redisCommands[name] as RedisCommand<K>)(this.target, args)
  }

  // ---- pub/sub -----------------------------------------------------------------------------

  protected async doSubscribe(channel: string): Promise<void> {
    const subscriber = this.subscriberConnection()
    const c = this.keyspace.channel(channel)
    await subscriber.run(() => subscriber.client.subscribe(c), true)
  }

  protected async doUnsubscribe(channel: string): Promise<void> {
    const subscriber = this.subscriber
    if (!subscriber) return
    const c = this.keyspace.channel(channel)
    await subscriber.run(() => subscriber.client.unsubscribe(c), true)
  }

  protected doPublish(channel: string, payload: string): Promise<void> {
    const c = this.keyspace.channel(channel)
    const redis = this.connection.client
    return this.connection.run(() => redis.publish(c, payload), false, ignore)
  }

  /**
   * The subscriber connection, created on the first subscribe. It connects on its first
   * SUBSCRIBE (which waits for it within `commandTimeoutMs`) and ioredis subscribes it again
   * to every channel after a reconnect. Messages published while it is down are lost, as with
   * any Redis pub/sub client.
   */
  private subscriberConnection(): RedisConnection {
    if (this.subscriber) return this.subscriber
    const subscriber = new RedisConnection({
      url: this.url,
      name: 'tidesync-ipc-sub',
      commandTimeoutMs: this.commandTimeoutMs,
      autoPipelining: false,
      stringNumbers: false,
      logger: this.logger,
    })
    subscriber.client.on('message', (redisChannel: string, payload: string) => {
      const channel = this.keyspace.channelName(redisChannel)
      if (channel !== null) this.deliver(channel, payload)
    })
    this.subscriber = subscriber
    return subscriber
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  protected async doClose(): Promise<void> {
    await Promise.all([this.connection.close(), this.subscriber?.close()])
  }
}
