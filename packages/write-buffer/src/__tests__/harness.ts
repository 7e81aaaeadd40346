import type { Ipc } from '@tidesync/ipc'
import { afterEach, beforeEach } from 'vitest'
import type { WriteBufferError } from '../errors.js'
import type { Logger, WriteBufferOptions } from '../types.js'
import { createWriteBuffer, type WriteBuffer } from '../write-buffer.js'
import { tempDir, uniqueId, type WriteBufferEnv } from './env.js'

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** Per-test resources: buffers, IPC instances and temp dirs, all released after the test. */
export interface Harness {
  env: WriteBufferEnv
  /** Unique per test (Redis key prefix). */
  prefix: string
  errors: WriteBufferError[]
  /** A new IPC instance (memory: a new store; Redis: the test's store). */
  ipc(): Promise<Ipc>
  /** A buffer on `ipc` (default: the test's first IPC) with manual flushing and no signals. */
  open(options?: Partial<WriteBufferOptions>, ipc?: Ipc): Promise<WriteBuffer>
  dir(): string
  /** Waits until `check` holds (polling), failing after `ms`. */
  until(check: () => Promise<boolean> | boolean, ms?: number): Promise<void>
}

export function useHarness(getEnv: () => WriteBufferEnv): Harness {
  const buffers: WriteBuffer[] = []
  const ipcs: Ipc[] = []
  const dirs: (() => void)[] = []
  const state = { prefix: '', first: undefined as Ipc | undefined }
  const harness: Harness = {
    get env() {
      return getEnv()
    },
    get prefix() {
      return state.prefix
    },
    errors: [],
    async ipc() {
      const ipc = await getEnv().newIpc(state.prefix)
      ipcs.push(ipc)
      state.first ??= ipc
      return ipc
    },
    async open(options = {}, ipc) {
      const target = ipc ?? state.first ?? (await harness.ipc())
      const buffer = createWriteBuffer({
        ipc: target,
        databases: { default: getEnv().db, second: getEnv().second },
        handleSignals: false,
        flushInterval: 3_600_000,
        checkpointPath: false,
        lockWaitMs: 5000,
        logger: silentLogger,
        onError: (error) => harness.errors.push(error),
        ...options,
      })
      buffers.push(buffer)
      await buffer.ready
      return buffer
    },
    dir() {
      const dir = tempDir()
      dirs.push(dir.remove)
      return dir.path
    },
    async until(check, ms = 10_000) {
      const deadline = Date.now() + ms
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error('condition not met in time')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
  }
  beforeEach(async () => {
    state.prefix = uniqueId('wbt')
    state.first = undefined
    harness.errors.length = 0
    await getEnv().reset()
  })
  afterEach(async () => {
    for (const buffer of buffers.splice(0)) await buffer.close().catch(() => undefined)
    for (const ipc of ipcs.splice(0)) await ipc.close().catch(() => undefined)
    for (const remove of dirs.splice(0)) remove()
  })
  return harness
}
