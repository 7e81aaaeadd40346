/**
 * The store commands, each declared once: its name, its arguments with their checks, and its
 * result type. Arguments are in their command form, the form that crosses a process boundary:
 * TTLs in whole milliseconds, `null` for "no TTL" (JSON has no undefined), variadic arguments
 * as one array. Everything else is driven from this table:
 *
 * - `BaseIpc`'s public methods call `prepareCommand` (checks, TTL seconds -> ms) and hand the
 *   command to their driver's `exec(name, args)`;
 * - the memory store runs each by name (`MemoryStore.exec`) from its map of command bodies
 *   (`drivers/memory/commands/`);
 * - a cluster worker sends `{ type: 'command', name, args }`, and the primary checks the
 *   untrusted arguments with `validateCommand` before running them on its store by name;
 * - the Redis driver maps each name to a Redis command or Lua script and decodes the reply
 *   (`drivers/redis/redis-commands.ts`).
 *
 * Adding a command: an entry here, its body in the memory map, its entry in the Redis map, the
 * method in the `Ipc` interface with its one-line wrapper in `BaseIpc`, and contract cases in
 * `testing/cases/`. The compiler reports a missing memory body or Redis entry; the cluster
 * driver needs nothing.
 *
 * Every command must see an expired key as missing, and locks live in their own namespace
 * (never listed by `keys`/`dump`, never touched by `del`).
 * @internal
 */
import type { IpcEntry, IpcKeyType, Json } from './types.js'
import {
  invalidArgument,
  toTtlMs,
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

/**
 * One command. `check(args, fromCaller)` throws a typed `IpcError` for the first bad argument,
 * in argument order. With `fromCaller` the arguments come from a public method, and TTLs in
 * seconds are turned into whole ms in place (only `set` and `expire` take seconds there).
 *
 * Why one hand-written check per command rather than a declarative list of per-argument
 * checkers: the checks run on every call, and a loop over checkers (an indirect call per
 * argument) made the memory driver's `incrBy` about 30% slower in the bench; straight-line
 * checks inline.
 *
 * Types only: `A` the command form of the arguments, `R` the result, `C` what the public
 * method passes where it differs.
 */
export interface Command<A extends unknown[], R, C extends unknown[]> {
  readonly arity: number
  check(args: A, fromCaller: boolean): void
  readonly types?: { args: A; result: R; caller: C }
}

/** Any command, as the generic code sees it. */
type AnyCommand = { readonly arity: number; check(args: unknown[], fromCaller: boolean): void }

function command<A extends unknown[], R = undefined, C extends unknown[] = A>(
  arity: A['length'],
  check: (args: A, fromCaller: boolean) => void,
): Command<A, R, C> {
  return { arity, check }
}

/** The TTL at `args[i]`: whole ms, or, from a public method, seconds turned into ms in place. */
function ttlAt(args: unknown[], i: number, fromCaller: boolean): void {
  if (fromCaller) args[i] = toTtlMs(args[i])
  else validateTtlMs(args[i])
}

function tokenAt(args: unknown[], i: number): void {
  const token = args[i]
  if (typeof token !== 'string' || token.length === 0) {
    throw invalidArgument('lock token must be a non-empty string')
  }
}

type Fields = Record<string, Json>

export const COMMANDS = {
  /** Replaces any type; without a TTL (`null`; `undefined` from the caller) clears the key's TTL. */
  set: command<
    [key: string, value: Json, ttlMs: number | null],
    undefined,
    [key: string, value: Json, ttlSeconds: number | undefined]
  >(3, (a, fromCaller) => {
    validateKey(a[0])
    validateValue(a[1])
    if (a[2] === (fromCaller ? undefined : null)) a[2] = null
    else ttlAt(a, 2, fromCaller)
  }),
  get: command<[key: string], Json | null>(1, (a) => validateKey(a[0])),
  /** How many of the keys existed (any type). */
  del: command<[keys: string[]], number>(1, (a) => validateKeys(a[0])),
  /** False when the key is missing. The caller passes seconds. */
  expire: command<[key: string, ttlMs: number], boolean>(2, (a, fromCaller) => {
    validateKey(a[0])
    ttlAt(a, 1, fromCaller)
  }),
  /** -2 when missing, -1 without a TTL (Redis PTTL). */
  pttl: command<[key: string], number>(1, (a) => validateKey(a[0])),
  type: command<[key: string], IpcKeyType | null>(1, (a) => validateKey(a[0])),
  keys: command<[prefix: string], string[]>(1, (a) => validateString(a[0], 'prefix')),
  /**
   * A missing key starts at 0; a value that is not an integer, or a result outside the
   * safe-integer range, fails with `IPC_NOT_INTEGER`. Keeps the key's TTL.
   */
  incrBy: command<[key: string, n: number], number>(2, (a) => {
    validateKey(a[0])
    validateDelta(a[1])
  }),

  /**
   * How many fields were new. `fields` may own a `__proto__` field: stores keep fields in a Map
   * and build results with `safeAssign`, never by assigning into a plain `{}`.
   */
  hset: command<[key: string, fields: Fields], number>(2, (a) => {
    validateKey(a[0])
    validateFields(a[1])
  }),
  hget: command<[key: string, field: string], Json | null>(2, (a) => {
    validateKey(a[0])
    validateString(a[1], 'field')
  }),
  hgetall: command<[key: string], Fields>(1, (a) => validateKey(a[0])),
  /** The values of `fields` in their order, `null` for a missing field (Redis HMGET); at least one field. */
  hmget: command<[key: string, fields: string[]], Array<Json | null>>(2, (a) => {
    validateKey(a[0])
    validateStrings(a[1], 'field')
  }),
  hdel: command<[key: string, fields: string[]], number>(2, (a) => {
    validateKey(a[0])
    validateStrings(a[1], 'field')
  }),
  hincrBy: command<[key: string, field: string, n: number], number>(3, (a) => {
    validateKey(a[0])
    validateString(a[1], 'field')
    validateDelta(a[2])
  }),

  // lists: indexes follow Redis (negative counts from the end)
  rpush: command<[key: string, items: Json[]], number>(2, (a) => {
    validateKey(a[0])
    if (Array.isArray(a[1]) && a[1].length === 0) throw invalidArgument('rpush needs at least one item')
    validateValues(a[1])
  }),
  lrange: command<[key: string, start: number, stop: number], Json[]>(3, (a) => {
    validateKey(a[0])
    validateIndex(a[1], 'start')
    validateIndex(a[2], 'stop')
  }),
  llen: command<[key: string], number>(1, (a) => validateKey(a[0])),
  ltrim: command<[key: string, start: number, stop: number], undefined>(3, (a) => {
    validateKey(a[0])
    validateIndex(a[1], 'start')
    validateIndex(a[2], 'stop')
  }),

  sadd: command<[key: string, members: string[]], number>(2, (a) => {
    validateKey(a[0])
    validateStrings(a[1], 'member')
  }),
  srem: command<[key: string, members: string[]], number>(2, (a) => {
    validateKey(a[0])
    validateStrings(a[1], 'member')
  }),
  smembers: command<[key: string], string[]>(1, (a) => validateKey(a[0])),
  sismember: command<[key: string, member: string], boolean>(2, (a) => {
    validateKey(a[0])
    validateString(a[1], 'member')
  }),
  scard: command<[key: string], number>(1, (a) => validateKey(a[0])),

  // take-and-clear, each one atomic step
  /** Moves any type with its TTL; false (nothing changes) when source is missing or destination exists. */
  move: command<[source: string, destination: string], boolean>(2, (a) => {
    validateKey(a[0], 'source')
    validateKey(a[1], 'destination')
  }),
  hgetdel: command<[key: string], Fields>(1, (a) => validateKey(a[0])),
  getdel: command<[key: string], Json | null>(1, (a) => validateKey(a[0])),

  // checkpoints
  dump: command<[prefix: string], IpcEntry[]>(1, (a) => validateString(a[0], 'prefix')),
  /** Replaces what each key holds; entries with `expiresAt <= now` are skipped. */
  restore: command<[entries: IpcEntry[]], undefined>(1, (a) => validateEntries(a[0])),

  // locks (own namespace): `lock` sets if absent; the others act only when the token matches.
  // Their TTLs are always ms: the public lock methods pass them through `OwnedLocks`.
  lock: command<[key: string, token: string, ttlMs: number], boolean>(3, (a) => {
    validateKey(a[0])
    tokenAt(a, 1)
    validateTtlMs(a[2])
  }),
  unlock: command<[key: string, token: string], boolean>(2, (a) => {
    validateKey(a[0])
    tokenAt(a, 1)
  }),
  extendLock: command<[key: string, token: string, ttlMs: number], boolean>(3, (a) => {
    validateKey(a[0])
    tokenAt(a, 1)
    validateTtlMs(a[2])
  }),
}

type Commands = typeof COMMANDS
type TypesOf<K extends keyof Commands> = NonNullable<Commands[K]['types']>

export type CommandName = keyof Commands
/** The command form of a command's arguments (what drivers receive). */
export type CommandArgs<K extends CommandName> = TypesOf<K>['args']
/** The arguments as the public method passes them to `prepareCommand` (TTLs in seconds). */
export type CallerArgs<K extends CommandName> = TypesOf<K>['caller']
export type CommandResult<K extends CommandName> = TypesOf<K>['result']

/** True when `name` is a command (guards untrusted input: `__proto__`, `toString` are not). */
export function isCommandName(name: unknown): name is CommandName {
  return typeof name === 'string' && Object.hasOwn(COMMANDS, name)
}

/** Throws a typed `IpcError` unless `args` are command-form arguments of `name` (untrusted input). */
export function validateCommand(name: CommandName, args: unknown[]): void {
  const spec: AnyCommand = COMMANDS[name]
  if (args.length !== spec.arity)
    throw invalidArgument(`expected ${spec.arity} arguments, got ${args.length}`)
  spec.check(args, false)
}

/**
 * Checks a public method's arguments and turns them into the command form, in place (no copy
 * on the hot path). Throws the first bad argument's typed `IpcError`.
 */
export function prepareCommand<K extends CommandName>(name: K, args: CallerArgs<K>): CommandArgs<K> {
  const spec: AnyCommand = COMMANDS[name]
  spec.check(args, true)
  return args as unknown as CommandArgs<K>
}
