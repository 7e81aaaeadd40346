/**
 * What every contract case gets, and the assertions they share. Cases use `node:assert` (not
 * vitest's `expect`) so they can also run outside vitest, e.g. inside a cluster worker.
 */
import assert from 'node:assert/strict'
import { IpcError, type IpcErrorCode } from '../../errors.js'
import type { Ipc } from '../../types.js'

export interface CaseContext {
  /** The instance under test. */
  readonly ipc: Ipc
  /**
   * A second instance on the same store (another "process": its own lock ownership and
   * subscriptions). On Redis/cluster another connection; on memory `createPeer()`.
   */
  readonly other: Ipc
  /** A key unique to this case and run (contains ':'), so suites sharing one Redis never collide. */
  key(name?: string): string
  /** A fresh instance on the same store; the case closes it. */
  makeIpc(): Promise<Ipc>
}

export interface ContractCase {
  /** The describe block, e.g. 'hashes'. */
  readonly group: string
  readonly name: string
  run(ctx: CaseContext): Promise<void>
}

/** Builds a group of cases. */
export function group(
  name: string,
  cases: Record<string, (ctx: CaseContext) => Promise<void>>,
): ContractCase[] {
  return Object.entries(cases).map(([caseName, run]) => ({ group: name, name: caseName, run }))
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A TTL short enough for a fast suite, and a wait after which it has surely expired. */
export const SHORT_TTL = 0.15
export const AFTER_SHORT_TTL_MS = 300

/**
 * Asserts that `promise` rejects with an `IpcError` carrying `code` (and, if given, a message
 * matching `message`). The call must return a promise: a synchronous throw fails the case.
 */
export async function rejectsWith(
  call: () => Promise<unknown>,
  code: IpcErrorCode,
  message?: RegExp,
): Promise<IpcError> {
  let promise: Promise<unknown>
  try {
    promise = call()
  } catch (error) {
    assert.fail(`expected a rejected promise with ${code}, but the call threw synchronously: ${error}`)
  }
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof IpcError, `expected an IpcError with ${code}, got ${String(error)}`)
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`)
    if (message) assert.match(error.message, message)
    return error
  }
  assert.fail(`expected a rejection with ${code}, but the call resolved`)
}

/** Sorted copy, for comparing unordered results. */
export function sorted<T>(values: T[]): T[] {
  return [...values].sort()
}

/** Asserts that nothing is stored at `key` (of any type). */
export async function assertMissing(ipc: Ipc, key: string): Promise<void> {
  assert.equal(await ipc.type(key), null, `expected ${JSON.stringify(key)} to be missing`)
  assert.equal(await ipc.pttl(key), -2)
}

/** Waits until `check` returns true, polling; fails after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

export { assert }
