/**
 * Where the driver's keys live in Redis. With the default prefix `tidesync:`:
 *
 * - a value stored at `views:42` lives at `tidesync:k:views:42`,
 * - the lock `job:7` lives at `tidesync:lock:job:7`,
 * - the channel `chat` is published as `tidesync:chat`.
 *
 * Why the `k:` / `lock:` split: a lock named `x` and a value named `lock:x` must never share a
 * Redis key, and `keys('')` / `dump('')` must not list locks. Two sub-namespaces that differ
 * in their first character keep them apart whatever the user's key is. Channels are a separate
 * namespace in Redis already.
 *
 * @internal
 */
export class Keyspace {
  readonly dataPrefix: string
  readonly lockPrefix: string

  constructor(readonly prefix: string) {
    this.dataPrefix = `${prefix}k:`
    this.lockPrefix = `${prefix}lock:`
  }

  key(key: string): string {
    return this.dataPrefix + key
  }

  lock(key: string): string {
    return this.lockPrefix + key
  }

  channel(channel: string): string {
    return this.prefix + channel
  }

  /** The user's channel name for a Redis channel, or null when it is not ours. */
  channelName(redisChannel: string): string | null {
    return redisChannel.startsWith(this.prefix) ? redisChannel.slice(this.prefix.length) : null
  }

  /** The user's key for a Redis key of the data namespace. */
  userKey(redisKey: string): string {
    return redisKey.slice(this.dataPrefix.length)
  }

  /** A SCAN MATCH pattern for every data key that starts with `userPrefix`, glob characters escaped. */
  scanPattern(userPrefix: string): string {
    return `${escapeGlob(this.dataPrefix + userPrefix)}*`
  }
}

/**
 * Escapes the characters Redis glob patterns give a meaning to (`* ? [ ] \`), so that a
 * prefix such as `a*[1]` matches only itself.
 */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
