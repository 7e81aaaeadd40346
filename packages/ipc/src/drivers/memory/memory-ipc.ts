import { BaseIpc } from '../../base-ipc.js'
import type { IpcEntry, IpcKeyType, Json, MemoryIpcOptions } from '../../types.js'
import { MemorySpace } from './memory-space.js'
import type { MemoryStore } from './memory-store.js'

/**
 * The memory driver: one process, one `MemoryStore`. Every primitive runs synchronously on the
 * store (hence atomically); pub/sub is delivered on a microtask, so `publish` never runs
 * handlers inside the caller's stack. Two `new MemoryIpc()` do not share data; `createPeer()`
 * gives another instance on the same store and bus (its own locks and subscriptions).
 *
 * @example
 * const ipc = new MemoryIpc({ driver: 'memory' })
 * await ipc.incrBy('views:42', 1)
 */
export class MemoryIpc extends BaseIpc {
  readonly driver = 'memory' as const
  private readonly store: MemoryStore
  private readonly space: MemorySpace
  private readonly receiver = (channel: string, payload: string) => this.deliver(channel, payload)

  constructor(
    private readonly options: MemoryIpcOptions = { driver: 'memory' },
    /** @internal another instance's space, see `createPeer` */
    space?: MemorySpace,
  ) {
    super(options)
    this.space = (space ?? new MemorySpace()).acquire()
    this.store = this.space.store
  }

  /**
   * Another instance on the same store and pub/sub bus, with its own lock ownership and
   * subscriptions: what a second process on the same Redis would be. Closing one instance
   * leaves the others working.
   */
  createPeer(): MemoryIpc {
    this.assertOpen()
    return new MemoryIpc(this.options, this.space)
  }

  protected doSet(key: string, value: Json, ttlMs: number | undefined): void {
    this.store.set(key, value, ttlMs ?? null)
  }
  protected doGet(key: string): Json | null {
    return this.store.get(key)
  }
  protected doDel(keys: string[]): number {
    return this.store.del(keys)
  }
  protected doExpire(key: string, ttlMs: number): boolean {
    return this.store.expire(key, ttlMs)
  }
  protected doPttl(key: string): number {
    return this.store.pttl(key)
  }
  protected doType(key: string): IpcKeyType | null {
    return this.store.type(key)
  }
  protected doKeys(prefix: string): string[] {
    return this.store.keys(prefix)
  }
  protected doIncrBy(key: string, n: number): number {
    return this.store.incrBy(key, n)
  }
  protected doHset(key: string, fields: Record<string, Json>): number {
    return this.store.hset(key, fields)
  }
  protected doHget(key: string, field: string): Json | null {
    return this.store.hget(key, field)
  }
  protected doHgetall(key: string): Record<string, Json> {
    return this.store.hgetall(key)
  }
  protected doHdel(key: string, fields: string[]): number {
    return this.store.hdel(key, fields)
  }
  protected doHincrBy(key: string, field: string, n: number): number {
    return this.store.hincrBy(key, field, n)
  }
  protected doRpush(key: string, items: Json[]): number {
    return this.store.rpush(key, items)
  }
  protected doLrange(key: string, start: number, stop: number): Json[] {
    return this.store.lrange(key, start, stop)
  }
  protected doLlen(key: string): number {
    return this.store.llen(key)
  }
  protected doLtrim(key: string, start: number, stop: number): void {
    this.store.ltrim(key, start, stop)
  }
  protected doSadd(key: string, members: string[]): number {
    return this.store.sadd(key, members)
  }
  protected doSrem(key: string, members: string[]): number {
    return this.store.srem(key, members)
  }
  protected doSmembers(key: string): string[] {
    return this.store.smembers(key)
  }
  protected doSismember(key: string, member: string): boolean {
    return this.store.sismember(key, member)
  }
  protected doScard(key: string): number {
    return this.store.scard(key)
  }
  protected doMove(source: string, destination: string): boolean {
    return this.store.move(source, destination)
  }
  protected doHgetdel(key: string): Record<string, Json> {
    return this.store.hgetdel(key)
  }
  protected doGetdel(key: string): Json | null {
    return this.store.getdel(key)
  }
  protected doDump(prefix: string): IpcEntry[] {
    return this.store.dump(prefix)
  }
  protected doRestore(entries: IpcEntry[]): void {
    this.store.restore(entries)
  }
  protected doLock(key: string, token: string, ttlMs: number): boolean {
    return this.store.lock(key, token, ttlMs)
  }
  protected doUnlock(key: string, token: string): boolean {
    return this.store.unlock(key, token)
  }
  protected doExtendLock(key: string, token: string, ttlMs: number): boolean {
    return this.store.extendLock(key, token, ttlMs)
  }
  protected doSubscribe(channel: string): void {
    this.space.subscribe(channel, this.receiver)
  }
  protected doUnsubscribe(channel: string): void {
    this.space.unsubscribe(channel, this.receiver)
  }
  protected doPublish(channel: string, payload: string): void {
    this.space.publish(channel, payload)
  }
  protected doClose(): void {
    for (const channel of this.subscribedChannels()) this.space.unsubscribe(channel, this.receiver)
    this.space.release()
  }
}
