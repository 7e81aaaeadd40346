import { filter, firstValueFrom, throwError, timeout } from 'rxjs'
import type { ClientOptions } from '../../core/client.js'
import { createClient, type TidesyncClient } from '../../core/client.js'
import type { SyncStatus } from '../../core/types.js'
import { uniqueDbName } from './idb.js'
import { modelOptions, schema } from './schema.js'
import type { TestServer } from './server.js'

export type TestClient = TidesyncClient<typeof schema>

export const silentLogger = { debug() {}, info() {}, warn() {}, error() {} }

/** A client of the test server with short retry/lease timings. Close it in teardown. */
export function testClient(
  server: TestServer,
  options: Partial<ClientOptions<typeof schema>> = {},
): TestClient {
  return createClient({
    url: server.url,
    schema,
    models: modelOptions,
    dbName: options.dbName ?? uniqueDbName(),
    logger: silentLogger,
    requestTimeoutMs: 10_000,
    retry: { minDelayMs: 20, maxDelayMs: 200 },
    lease: { leaseMs: 3000, retryMs: 5 },
    socketOptions: { transports: ['websocket'], reconnectionDelay: 20, reconnectionDelayMax: 100 },
    ...options,
  })
}

/** Resolves with the first status that passes `check` (rejects after `timeoutMs`). */
export function statusWhere(
  client: TestClient,
  check: (status: SyncStatus) => boolean,
  timeoutMs = 5000,
  what = 'status',
): Promise<SyncStatus> {
  return firstValueFrom(
    client.status$.pipe(
      filter(check),
      timeout({
        first: timeoutMs,
        with: () =>
          throwError(() => new Error(`Timed out waiting for ${what}: ${JSON.stringify(client.status)}`)),
      }),
    ),
  )
}

/** Waits until the client is connected. */
export async function online(client: TestClient, timeoutMs = 5000): Promise<void> {
  await statusWhere(client, (status) => status.online, timeoutMs, 'client online')
}

/** Waits (through `status$`) until the client is online, not syncing and its outbox is empty. */
export async function idle(client: TestClient, timeoutMs = 10_000): Promise<void> {
  await statusWhere(
    client,
    (status) => status.online && !status.syncing && status.pending === 0,
    timeoutMs,
    'client idle',
  )
}

/** Goes online and waits until connected, every active subset synced and the client idle. */
export async function settle(client: TestClient): Promise<void> {
  client.goOnline()
  await online(client)
  await client.syncNow()
  await idle(client)
}
