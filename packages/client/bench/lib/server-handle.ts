import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { SeedSet } from './server-process.js'

/** A tidesync server running in its own process (see `server-process.ts`). */
export interface ServerHandle {
  url: string
  /** `postgres` or `pglite`. */
  database: string
  close(): Promise<void>
}

/** Node flags that run our TypeScript sources (the workspace packages' `source` condition). */
export const TS_EXEC_ARGV = ['--import', 'tsx', '--conditions=source']

/** Forks the server, seeds `sets` and resolves when it listens. */
export async function startServerProcess(sets: SeedSet[]): Promise<ServerHandle> {
  const file = fileURLToPath(new URL('./server-process.ts', import.meta.url))
  const child: ChildProcess = fork(file, [JSON.stringify({ sets })], {
    // BENCH_SERVER_PROFILE=<dir>: the server writes a V8 CPU profile there when it stops.
    execArgv: process.env.BENCH_SERVER_PROFILE
      ? [...TS_EXEC_ARGV, '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROFILE}`]
      : TS_EXEC_ARGV,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const ready = await new Promise<{ url: string; database: string }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench server exited (${code}) before it was ready`)))
    child.once('message', (message: { type: string; url: string; database: string }) => {
      if (message.type === 'ready') resolve(message)
    })
  })
  return {
    ...ready,
    close() {
      if (child.exitCode !== null) return Promise.resolve()
      return new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.send({ type: 'close' })
      })
    },
  }
}
