import { createIpc, type Ipc } from '@tidesync/ipc'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import {
  type CaptureDatabase,
  type CaptureServer,
  type CaptureServerOptions,
  captureDatabase,
  SyncClient,
  startCaptureServer,
} from '../fixtures/capture-env.js'
import type { TestDatabase } from '../fixtures/databases.js'

export interface CaptureEnv {
  db: CaptureDatabase
  /** A memory IPC of this test (servers started with `start` share it unless given another). */
  ipc: Ipc
  /** Makes the database the suite runs on (PGlite or a throwaway PostgreSQL database). */
  makeDatabase: () => Promise<TestDatabase>
  /** A server on the suite's database, closed after the test. */
  start(options?: CaptureServerOptions & { ipc?: Ipc }): Promise<CaptureServer>
  /** A client of a server, closed after the test. */
  open(
    server: CaptureServer,
    token?: string,
    options?: Parameters<typeof SyncClient.open>[2],
  ): Promise<SyncClient>
  /** Something else to close after the test (LIFO). */
  defer(cleanup: () => Promise<unknown> | unknown): void
}

/**
 * One database per suite (emptied before each test, without capturing), a memory IPC per test,
 * and the servers and clients a test starts, closed after it.
 */
export function useCaptureEnv(makeDatabase: () => Promise<TestDatabase>): () => CaptureEnv {
  let db: CaptureDatabase | undefined
  let env: CaptureEnv | undefined
  let cleanups: Array<() => Promise<unknown> | unknown> = []
  beforeAll(async () => {
    db = await captureDatabase(await makeDatabase())
  }, 60_000)
  beforeEach(async () => {
    await db!.reset()
    const ipc = await createIpc({ driver: 'memory' })
    cleanups = [() => ipc.close()]
    const defer = (cleanup: () => Promise<unknown> | unknown) => {
      cleanups.push(cleanup)
    }
    env = {
      db: db!,
      ipc,
      makeDatabase,
      defer,
      async start(options = {}) {
        const { ipc: own = ipc, ...rest } = options
        const server = await startCaptureServer(db!.database, own, rest)
        defer(() => server.close())
        return server
      },
      async open(server, token, options) {
        const client = await SyncClient.open(server.url, token, options)
        defer(() => client.close())
        return client
      },
    }
  })
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
    cleanups = []
  }, 30_000)
  afterAll(async () => {
    await db?.close()
  })
  return () => {
    if (!env) throw new Error('capture env not ready')
    return env
  }
}
