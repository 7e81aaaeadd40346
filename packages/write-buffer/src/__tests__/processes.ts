import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** A child process running one of ./children/*.ts with tsx (TypeScript sources of the workspace). */
export interface Child {
  process: ChildProcess
  /** Everything the child wrote to stderr (shown when a test fails). */
  stderr(): string
  /** The next message `{ type }` from the child (rejects when the child exits first). */
  next<T = Record<string, unknown>>(type: string, timeoutMs?: number): Promise<T>
  /** Resolves with how the child ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const running = new Set<ChildProcess>()

export function startChild(script: string, env: Record<string, string>): Child {
  const child = fork(fileURLToPath(new URL(`./children/${script}`, import.meta.url)), [], {
    execArgv: ['--import', 'tsx', '--conditions=source'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  running.add(child)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
  })
  const inbox: Record<string, unknown>[] = []
  const waiters: { type: string; resolve: (m: Record<string, unknown>) => void }[] = []
  child.on('message', (message: Record<string, unknown>) => {
    const index = waiters.findIndex((w) => w.type === message?.type)
    if (index >= 0) waiters.splice(index, 1)[0]!.resolve(message)
    else inbox.push(message)
  })
  return {
    process: child,
    stderr: () => stderr,
    exited,
    next<T>(type: string, timeoutMs = 30_000): Promise<T> {
      const queued = inbox.findIndex((m) => m?.type === type)
      if (queued >= 0) return Promise.resolve(inbox.splice(queued, 1)[0] as T)
      return new Promise<T>((resolve, reject) => {
        const waiter = {
          type,
          resolve: (message: Record<string, unknown>) => {
            clearTimeout(timer)
            resolve(message as T)
          },
        }
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`no "${type}" message from ${script} within ${timeoutMs} ms\n${stderr}`))
        }, timeoutMs)
        waiters.push(waiter)
        void exited.then(({ code, signal }) => {
          if (!waiters.includes(waiter)) return
          clearTimeout(timer)
          waiters.splice(waiters.indexOf(waiter), 1)
          reject(new Error(`${script} exited (${code ?? signal}) before "${type}"\n${stderr}`))
        })
      })
    },
  }
}

/** Kills every child still running (test teardown). */
export async function killChildren(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      }),
  )
  await Promise.all(waits)
}
