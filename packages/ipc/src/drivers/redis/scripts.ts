/**
 * The Lua scripts behind every compound operation of the Redis driver. Redis runs a script
 * atomically, so each of these is one step for every other client.
 *
 * ioredis registers them with `defineCommand`: the first call on a connection sends EVAL (which
 * also loads the script), later calls send EVALSHA, and a server that lost its script cache
 * (restart) gets EVAL again after a NOSCRIPT reply.
 *
 * @internal
 */
export interface ScriptDefinition {
  readonly numberOfKeys: number
  readonly lua: string
}

/**
 * Takes a lock (SET NX PX with the owner token). Also answers 1 when the lock already holds
 * this very token, which makes the call safe to resend after a connection drop: the first
 * attempt may have taken the lock before its reply was lost. ARGV: token, ttl ms.
 */
export const lockAcquire: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 1
end
return 0`,
}

/** Deletes a lock only when it still holds the caller's owner token. KEYS: lock. ARGV: token. */
export const lockRelease: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
}

/** Renews a lock's TTL only when it still holds the caller's token. ARGV: token, ttl ms. */
export const lockExtend: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`,
}

/**
 * RENAMENX without its error on a missing source: 0 when the source is missing or the
 * destination exists, 1 after the move. RENAMENX keeps the source's TTL.
 * KEYS: source, destination.
 */
export const move: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return redis.call('RENAMENX', KEYS[1], KEYS[2])`,
}

/**
 * Reads a hash and deletes it in one step. HGETALL raises WRONGTYPE on another type, which
 * aborts the script before the DEL, so a wrong call changes nothing. KEYS: hash.
 */
export const hgetdel: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then
  redis.call('DEL', KEYS[1])
end
return fields`,
}

/**
 * A consistent snapshot of every key matching a SCAN pattern: one atomic script, so a key
 * moved during the dump (`move` of pending state while a checkpoint runs) is seen exactly
 * once, either before or after the move. Returns a flat array of
 * `key, type, pttl, payload` quadruples; payload is the string, or the flat HGETALL / LRANGE /
 * SMEMBERS array. ARGV: pattern, SCAN COUNT.
 *
 * Why not SCAN from the client: a SCAN spread over many round trips is not a snapshot, and a
 * key renamed between two SCAN calls can be missed entirely. The price is that the script
 * blocks Redis while it walks the keyspace, which is fine for the checkpoint-sized prefixes
 * `dump` is meant for.
 */
export const dump: ScriptDefinition = {
  numberOfKeys: 0,
  lua: `
local out = {}
local cursor = '0'
local seen = {}
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', ARGV[2])
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    if not seen[key] then
      seen[key] = true
      local t = redis.call('TYPE', key)['ok']
      local payload = nil
      if t == 'string' then
        payload = redis.call('GET', key)
      elseif t == 'hash' then
        payload = redis.call('HGETALL', key)
      elseif t == 'list' then
        payload = redis.call('LRANGE', key, 0, -1)
      elseif t == 'set' then
        payload = redis.call('SMEMBERS', key)
      end
      if payload ~= nil then
        out[#out + 1] = key
        out[#out + 1] = t
        out[#out + 1] = redis.call('PTTL', key)
        out[#out + 1] = payload
      end
    end
  end
until cursor == '0'
return out`,
}

/** Every script, by the command name ioredis gives it. */
export const scripts = {
  tsLockAcquire: lockAcquire,
  tsLockRelease: lockRelease,
  tsLockExtend: lockExtend,
  tsMove: move,
  tsHgetdel: hgetdel,
  tsDump: dump,
} as const

/** The methods `defineCommand` adds to the ioredis client, typed. */
export interface ScriptCommands {
  tsLockAcquire(lockKey: string, token: string, ttlMs: number): Promise<number>
  tsLockRelease(lockKey: string, token: string): Promise<number>
  tsLockExtend(lockKey: string, token: string, ttlMs: number): Promise<number>
  tsMove(source: string, destination: string): Promise<number>
  tsHgetdel(key: string): Promise<string[]>
  tsDump(pattern: string, count: number): Promise<DumpReply>
}

/** `key, type, pttl, payload` quadruples, flattened. */
export type DumpReply = (string | number | string[])[]
