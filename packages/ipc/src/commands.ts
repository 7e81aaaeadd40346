/**
 * The store commands as data: name, argument tuple and result of each primitive. The memory
 * store executes them (`MemoryStore.exec`), the cluster worker sends them to the primary, and
 * the primary checks untrusted arguments with `validateCommand` before executing them.
 *
 * Arguments are the already-normalised forms the `BaseIpc.do*` primitives receive: TTLs in
 * whole milliseconds, `null` for "no TTL" (JSON has no undefined), variadic arguments as arrays.
 * @internal
 */
import type { IpcEntry, IpcKeyType, Json } from './types.js'
import {
  invalidArgument,
  validateDelta,
  validateEntries,
  validateFields,
  validateIndex,
  validateKey,
  validateKeys,
  validateString,
  validateStrings,
  validateTtlMs,
  validateValue,
  validateValues,
} from './validate.js'

export interface CommandSpecs {
  set: { args: [key: string, value: Json, ttlMs: number | null]; result: undefined }
  get: { args: [key: string]; result: Json | null }
  del: { args: [keys: string[]]; result: number }
  expire: { args: [key: string, ttlMs: number]; result: boolean }
  pttl: { args: [key: string]; result: number }
  type: { args: [key: string]; result: IpcKeyType | null }
  keys: { args: [prefix: string]; result: string[] }
  incrBy: { args: [key: string, n: number]; result: number }
  hset: { args: [key: string, fields: Record<string, Json>]; result: number }
  hget: { args: [key: string, field: string]; result: Json | null }
  hgetall: { args: [key: string]; result: Record<string, Json> }
  hdel: { args: [key: string, fields: string[]]; result: number }
  hincrBy: { args: [key: string, field: string, n: number]; result: number }
  rpush: { args: [key: string, items: Json[]]; result: number }
  lrange: { args: [key: string, start: number, stop: number]; result: Json[] }
  llen: { args: [key: string]; result: number }
  ltrim: { args: [key: string, start: number, stop: number]; result: undefined }
  sadd: { args: [key: string, members: string[]]; result: number }
  srem: { args: [key: string, members: string[]]; result: number }
  smembers: { args: [key: string]; result: string[] }
  sismember: { args: [key: string, member: string]; result: boolean }
  scard: { args: [key: string]; result: number }
  move: { args: [source: string, destination: string]; result: boolean }
  hgetdel: { args: [key: string]; result: Record<string, Json> }
  getdel: { args: [key: string]; result: Json | null }
  dump: { args: [prefix: string]; result: IpcEntry[] }
  restore: { args: [entries: IpcEntry[]]; result: undefined }
  lock: { args: [key: string, token: string, ttlMs: number]; result: boolean }
  unlock: { args: [key: string, token: string]; result: boolean }
  extendLock: { args: [key: string, token: string, ttlMs: number]; result: boolean }
}

export type CommandName = keyof CommandSpecs
export type CommandArgs<K extends CommandName> = CommandSpecs[K]['args']
export type CommandResult<K extends CommandName> = CommandSpecs[K]['result']

/** Something that executes store commands synchronously (the memory store). */
export type CommandHandlers = { [K in CommandName]: (...args: CommandArgs<K>) => CommandResult<K> }

type ArgsValidator = (args: unknown[]) => void

function arity(args: unknown[], n: number): void {
  if (args.length !== n) throw invalidArgument(`expected ${n} arguments, got ${args.length}`)
}

const key = (args: unknown[]) => {
  arity(args, 1)
  validateKey(args[0])
}

const token = (value: unknown) => {
  if (typeof value !== 'string' || value.length === 0)
    throw invalidArgument('lock token must be a non-empty string')
}

/** Argument checks for every command, for callers that do not go through `BaseIpc`. */
const VALIDATORS = new Map<string, ArgsValidator>([
  [
    'set',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      validateValue(a[1])
      if (a[2] !== null) validateTtlMs(a[2])
    },
  ],
  ['get', key],
  [
    'del',
    (a) => {
      arity(a, 1)
      validateKeys(a[0])
    },
  ],
  [
    'expire',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateTtlMs(a[1])
    },
  ],
  ['pttl', key],
  ['type', key],
  [
    'keys',
    (a) => {
      arity(a, 1)
      validateString(a[0], 'prefix')
    },
  ],
  [
    'incrBy',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateDelta(a[1])
    },
  ],
  [
    'hset',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateFields(a[1])
    },
  ],
  [
    'hget',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateString(a[1], 'field')
    },
  ],
  ['hgetall', key],
  [
    'hdel',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateStrings(a[1], 'field')
    },
  ],
  [
    'hincrBy',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      validateString(a[1], 'field')
      validateDelta(a[2])
    },
  ],
  [
    'rpush',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateValues(a[1])
      if ((a[1] as unknown[]).length === 0) throw invalidArgument('rpush needs at least one item')
    },
  ],
  [
    'lrange',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      validateIndex(a[1], 'start')
      validateIndex(a[2], 'stop')
    },
  ],
  ['llen', key],
  [
    'ltrim',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      validateIndex(a[1], 'start')
      validateIndex(a[2], 'stop')
    },
  ],
  [
    'sadd',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateStrings(a[1], 'member')
    },
  ],
  [
    'srem',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateStrings(a[1], 'member')
    },
  ],
  ['smembers', key],
  [
    'sismember',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      validateString(a[1], 'member')
    },
  ],
  ['scard', key],
  [
    'move',
    (a) => {
      arity(a, 2)
      validateKey(a[0], 'source')
      validateKey(a[1], 'destination')
    },
  ],
  ['hgetdel', key],
  ['getdel', key],
  [
    'dump',
    (a) => {
      arity(a, 1)
      validateString(a[0], 'prefix')
    },
  ],
  [
    'restore',
    (a) => {
      arity(a, 1)
      validateEntries(a[0])
    },
  ],
  [
    'lock',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      token(a[1])
      validateTtlMs(a[2])
    },
  ],
  [
    'unlock',
    (a) => {
      arity(a, 2)
      validateKey(a[0])
      token(a[1])
    },
  ],
  [
    'extendLock',
    (a) => {
      arity(a, 3)
      validateKey(a[0])
      token(a[1])
      validateTtlMs(a[2])
    },
  ],
])

/** True when `name` is a store command (guards untrusted input, `__proto__` included). */
export function isCommandName(name: unknown): name is CommandName {
  return typeof name === 'string' && VALIDATORS.has(name)
}

/** Throws a typed `IpcError` unless `args` fit command `name` (untrusted input). */
export function validateCommand(name: CommandName, args: unknown[]): void {
  VALIDATORS.get(name)!(args)
}
