/**
 * Runs in a child process with NO global IndexedDB (it does not load the test setup, which
 * installs `fake-indexeddb/auto`): two clients on two separate injected fake-indexeddb factories,
 * both with the same database name, against the real test server at `TIDESYNC_TEST_URL`.
 *
 * Prints one JSON line on stdout: `{ ok: true, facts }` with what it observed, or
 * `{ ok: false, error }`. The test (`injected-indexeddb.test.ts`) asserts on the facts.
 */
import { Dexie } from 'dexie'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { filter, firstValueFrom, timeout } from 'rxjs'
import { createClient, type Logger, type TidesyncClient } from '../../index.js'
import { modelOptions, schema } from './schema.js'

type Client = TidesyncClient<typeof schema>
type Factory = InstanceType<typeof IDBFactory>

const url = process.env.TIDESYNC_TEST_URL
const dbName = process.env.TIDESYNC_TEST_DB ?? 'injected-app'
const logged: string[] = []
const logger: Logger = {
  debug() {},
  info() {},
  warn: (message) => logged.push(`warn: ${message}`),
  error: (message) => logged.push(`error: ${message}`),
}

function makeClient(factory: Factory): Client {
  return createClient({
    url: url!,
    schema,
    models: modelOptions,
    dbName,
    indexedDB: factory,
    IDBKeyRange,
    logger,
    requestTimeoutMs: 5000,
    retry: { minDelayMs: 20, maxDelayMs: 200 },
    socketOptions: { transports: ['websocket'], reconnectionDelay: 20, reconnectionDelayMax: 100 },
  })
}

/** The first value of `source` that passes `check`, or an error naming `what` after 5 s. */
function first<T>(
  source: import('rxjs').Observable<T>,
  check: (value: T) => boolean,
  what: string,
): Promise<T> {
  return firstValueFrom(
    source.pipe(
      filter(check),
      timeout({
        first: 5000,
        with: () => {
          throw new Error(`timed out waiting for ${what}`)
        },
      }),
    ),
  )
}

/** Reads one factory's copy of the database directly (no client), by opening it as it exists. */
async function readFactory(factory: Factory) {
  const db = new Dexie(dbName, { indexedDB: factory, IDBKeyRange })
  await db.open()
  try {
    const state = await db.table('_state').get('clientId')
    const titles = (await db.table('r_todos').toArray()).map((row) => row.title as string).sort()
    return { clientId: state?.value as string | undefined, titles }
  } finally {
    db.close()
  }
}

async function main() {
  if (!url) throw new Error('TIDESYNC_TEST_URL is not set')
  const globalIndexedDb = 'indexedDB' in globalThis || 'IDBKeyRange' in globalThis
  const factories = [new IDBFactory(), new IDBFactory()] as const
  const [a, b] = [makeClient(factories[0]), makeClient(factories[1])]
  try {
    await Promise.all([a.ready, b.ready])
    const ids = { a: await a.clientId(), b: await b.clientId() }
    const projectId = `p-${ids.a.slice(-8)}`
    // Live queries on both clients keep the project in sync and must emit on changes.
    const todosA = a.collection('todos').find$({ projectId })
    const todosB = b.collection('todos').find$({ projectId })
    const keepA = todosA.subscribe()
    const keepB = todosB.subscribe()
    // Both subsets finished their first sync before anything is written.
    const synced = (client: Client, what: string) =>
      first(client.collection('todos').syncState$({ projectId }), (state) => state.synced, what)
    await Promise.all([synced(a, 'a synced'), synced(b, 'b synced')])

    // a -> server -> b
    const created = await a.collection('todos').create({ title: 'from a', projectId })
    await first(a.status$, (status) => status.pending === 0 && !status.syncing, 'a pushed (pending 0)')
    await first(todosB, (rows) => rows.some((row) => row.uid === created.uid), 'b sees the todo of a')
    // b -> server -> a
    await b.collection('todos').update(created.uid, { title: 'edited on b' })
    await first(
      todosA,
      (rows) => rows.some((row) => row.uid === created.uid && row.title === 'edited on b'),
      'a sees the edit of b',
    )
    // A write that stays local: only factory a may hold it.
    a.goOffline()
    await first(a.status$, (status) => !status.online, 'a offline')
    await a.collection('todos').create({ title: 'only on a', projectId })
    await first(a.status$, (status) => status.pending === 1, 'a has one pending change')
    keepA.unsubscribe()
    keepB.unsubscribe()
    await Promise.all([a.close(), b.close()])

    const [storedA, storedB] = [await readFactory(factories[0]), await readFactory(factories[1])]
    return {
      globalIndexedDb,
      projectId,
      clientIds: ids,
      storedA,
      storedB,
      databasesA: (await factories[0].databases()).map((info: { name?: string }) => info.name),
      databasesB: (await factories[1].databases()).map((info: { name?: string }) => info.name),
      logged,
    }
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

main().then(
  (facts) => finish({ ok: true, facts }),
  (error: Error & { code?: string }) =>
    finish({ ok: false, error: { code: error.code, message: error.message }, logged }),
)

function finish(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
}
