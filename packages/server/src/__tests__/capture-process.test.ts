import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createIpc, type Ipc } from '@tidesync/ipc'
import { redisUrl, requireServer, uniqueId } from '@tidesync/test-env'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  allPublished,
  type CaptureDatabase,
  type CaptureServer,
  captureDatabase,
  converges,
  SyncClient,
  startCaptureServer,
  until,
} from './fixtures/capture-env.js'
import { createPostgresDatabase } from './fixtures/databases.js'

const hasRedis = await requireServer('redis')
const hasPostgres = await requireServer('postgres')

const WORKER = fileURLToPath(new URL('./fixtures/capture-server-process.ts', import.meta.url))
const LEASE_SECONDS = 1

interface Worker {
  name: string
  child: ChildProcess
  url: string
}

/**
 * Change capture across real server processes sharing Redis and PostgreSQL: the reader is
 * killed outright (no unlock, no goodbye) and another process takes over when its lease ends;
 * a deployment that was entirely down while SQL wrote catches up when a server starts.
 */
describe.runIf(hasRedis && hasPostgres)('change capture across server processes', () => {
  const keyPrefix = `${uniqueId('capture')}:`
  const workers: Worker[] = []
  const clients: SyncClient[] = []
  let db: CaptureDatabase
  let ipc: Ipc
  let observer: CaptureServer | undefined

  const startWorker = (name: string): Promise<Worker> => {
    const child = fork(WORKER, [], {
      execArgv: ['--import', 'tsx', '--conditions=source'],
      env: {
        ...process.env,
        DATABASE_URL: db.database.url,
        REDIS_URL: redisUrl,
        KEY_PREFIX: keyPrefix,
        SERVER_NAME: name,
        LEASE_SECONDS: String(LEASE_SECONDS),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000)
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`${name} exited with ${code} before it was ready`))
      })
      child.on('message', (message: { type?: string; url?: string }) => {
        if (message?.type !== 'ready') return
        clearTimeout(timer)
        const worker = { name, child, url: message.url! }
        workers.push(worker)
        resolve(worker)
      })
    })
  }

  /** Kills a worker outright (SIGKILL, by its pid) and waits for it to be gone. */
  const kill = async (worker: Worker): Promise<void> => {
    const { child } = worker
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    await exited
  }

  const open = async (url: string, options?: Parameters<typeof SyncClient.open>[2]) => {
    const client = await SyncClient.open(url, 'admin', options)
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    db = await captureDatabase(await createPostgresDatabase())
    ipc = await createIpc({ driver: 'redis', url: redisUrl, keyPrefix })
    // A server that never reads captured changes (capture off): its client sees what the
    // worker processes publish on Redis, whichever of them reads.
    observer = await startCaptureServer(db.database, ipc, { capture: false })
  }, 60_000)

  afterAll(async () => {
    for (const client of clients) client.close()
    await Promise.all(workers.map(kill))
    await observer?.close()
    if (ipc) {
      const keys = await ipc.keys('')
      if (keys.length > 0) await ipc.del(...keys)
      await ipc.close()
    }
    await db?.close()
  }, 60_000)

  it('the reader process dies; another process takes over within the lease and publishes what was written', async () => {
    // A starts first, so A holds the reader's lock; then B.
    const a = await startWorker('A')
    const b = await startWorker('B')
    const onB = await open(b.url)
    const x = uuidv7()
    await db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${x}', 'alice', 'read by A')`)
    await until(() => onB.records.has(x), 'the client on B to get the insert A published')

    await kill(a)
    const y = uuidv7()
    await db.exec(`BEGIN;
      UPDATE todos SET title = 'after A died' WHERE uid = '${x}';
      INSERT INTO todos (uid, owner_id, title) VALUES ('${y}', 'alice', 'new');
      COMMIT;`)
    await until(
      () => onB.records.get(x)?.record.title === 'after A died' && onB.records.has(y),
      'B to take over and publish',
      LEASE_SECONDS * 1000 * 3 + 10_000,
    )
    await converges(onB, observer!, 'the client on B to converge')
    await kill(b)
  }, 90_000)

  it('with every server down while SQL writes, a server that starts publishes them from the stored cursor', async () => {
    const watcher = await open(observer!.url)
    const offline = await open(observer!.url, { live: false })
    offline.offline()
    const [fresh, changed, doomed] = [uuidv7(), uuidv7(), uuidv7()]
    // Published by a reader before the deployment goes down.
    const d = await startWorker('D')
    await db.exec(`INSERT INTO todos (uid, owner_id, title) VALUES ('${doomed}', 'alice', 'doomed')`)
    await until(() => watcher.records.has(doomed), 'the watcher to get the insert live')
    // ...and its cursor stored (else the next reader publishes the insert again, with the delete:
    // the case of "a client that loaded a record before its capture was published").
    await allPublished(db)
    // Every server dies: no reader runs from here on.
    await Promise.all(workers.map(kill))
    expect(d.child.signalCode).toBe('SIGKILL')
    await db.exec(`BEGIN;
      INSERT INTO todos (uid, owner_id, title) VALUES ('${fresh}', 'alice', 'while down'), ('${changed}', 'alice', 'v1');
      DELETE FROM todos WHERE uid = '${doomed}';
      COMMIT;`)
    await db.exec(`UPDATE todos SET title = 'v2' WHERE uid = '${changed}'`)
    const seen = watcher.pushes.length

    const c = await startWorker('C')
    await converges(watcher, observer!, 'the subscribed client to get what was written while down')
    const named = watcher.pushes
      .slice(seen)
      .flatMap((p) => [...p.upserts.map((u) => u.record.uid), ...p.deletes.map((d) => d.uid)])
    expect(new Set(named)).toEqual(new Set([fresh, changed, doomed]))
    // A client of the new server converges too, by delta pull from its old checkpoint.
    await offline.online(c.url)
    expect(offline.state()).toEqual(watcher.state())
  }, 90_000)
})
