/**
 * A client given `indexedDB` and `IDBKeyRange` as options, where no global IndexedDB exists.
 * Every other test runs with `fake-indexeddb/auto` installed, so this one runs its clients in a
 * child process (`helpers/injected-idb-child.ts`) that never installs the global: two clients
 * on two separate fake-indexeddb factories, same database name, against the real server here.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { todos } from './helpers/schema.js'
import { startServer, type TestServer } from './helpers/server.js'

const childScript = fileURLToPath(new URL('./helpers/injected-idb-child.ts', import.meta.url))
const packageDir = fileURLToPath(new URL('../..', import.meta.url))

let server: TestServer
const children = new Set<ChildProcess>()

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await server?.close()
})

/** Runs the child script and resolves with the JSON line it prints. */
function runChild(env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', childScript], {
      cwd: packageDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      children.delete(child)
      const line = stdout.trim().split('\n').at(-1)
      try {
        resolve(JSON.parse(line ?? ''))
      } catch {
        reject(new Error(`child exited with ${code} without a result\n${stdout}\n${stderr}`))
      }
    })
  })
}

describe('a client on an injected IndexedDB (no global indexedDB)', () => {
  it('opens, syncs and keeps its data in its own factory, two clients on two factories', async () => {
    const result = await runChild({ TIDESYNC_TEST_URL: server.url, TIDESYNC_TEST_DB: 'injected-app' })
    expect(result.error ?? null).toBeNull()
    expect(result.ok).toBe(true)
    const facts = result.facts as {
      globalIndexedDb: boolean
      projectId: string
      clientIds: { a: string; b: string }
      storedA: { clientId: string; titles: string[] }
      storedB: { clientId: string; titles: string[] }
      databasesA: string[]
      databasesB: string[]
      logged: string[]
    }
    // The child really had no global IndexedDB.
    expect(facts.globalIndexedDb).toBe(false)
    // Same database name, two factories: two databases, two client ids.
    expect(facts.clientIds.a).not.toBe(facts.clientIds.b)
    expect(facts.databasesA).toContain('injected-app')
    expect(facts.databasesB).toContain('injected-app')
    // Each factory holds its own client's database: its client id, and what reached it.
    expect(facts.storedA.clientId).toBe(facts.clientIds.a)
    expect(facts.storedB.clientId).toBe(facts.clientIds.b)
    expect(facts.storedA.titles).toEqual(['edited on b', 'only on a'])
    expect(facts.storedB.titles).toEqual(['edited on b'])
    expect(facts.logged).toEqual([])
    // The server has the synced record (created on a, edited on b), not a's offline create.
    const onServer = await server.db.select().from(todos).where(eq(todos.projectId, facts.projectId))
    expect(onServer.map((row) => row.title)).toEqual(['edited on b'])
  })
})
