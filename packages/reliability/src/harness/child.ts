import { type ChildProcess, fork } from 'node:child_process'
import { isRel, type Report, type Request } from './messages.js'

type RequestBody<T extends Request['type']> = Omit<Extract<Request, { type: T }>, 'rel' | 'id' | 'type'>

/** The arguments that make a forked process run TypeScript sources (and expose `gc`). */
export const TS_EXEC_ARGV = ['--expose-gc', '--import', 'tsx', '--conditions=source']

/**
 * A process the test forked, talking the `messages.ts` protocol. Ends only by its own handle
 * (`kill`, `stop`), never by name.
 */
export class ChildHandle {
  readonly output: string[] = []
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readonly listeners = new Set<(report: Report) => void>()
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString())
      if (this.output.length > 200) this.output.shift()
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('message', (message: unknown) => {
      if (!isRel(message)) return
      const report = message as Report
      if (report.type === 'reply') {
        const waiter = this.waiting.get(report.id)
        if (waiter) {
          this.waiting.delete(report.id)
          if (report.error !== undefined) waiter.reject(new Error(`${name}: ${report.error}`))
          else waiter.resolve(report.result)
        }
      }
      for (const listener of this.listeners) listener(report)
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const waiter of this.waiting.values())
          waiter.reject(new Error(`${name} exited (${code ?? signal})`))
        this.waiting.clear()
        resolve({ code, signal })
      })
    })
  }

  /** Forks `file` with `env` and waits for its 'ready' report (or fails with its output). */
  static async start(
    name: string,
    file: string,
    env: Record<string, string>,
    timeoutMs = 60_000,
  ): Promise<{ handle: ChildHandle; ready: Extract<Report, { type: 'ready' }> }> {
    const child = fork(file, [], {
      env: { ...process.env, ...env },
      execArgv: TS_EXEC_ARGV,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const handle = new ChildHandle(name, child)
    try {
      const ready = await handle.next('ready', timeoutMs)
      return { handle, ready: ready as Extract<Report, { type: 'ready' }> }
    } catch (error) {
      await handle.kill('SIGKILL')
      throw error
    }
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** The next report of `type` (a 'fatal' report or an exit fails it). */
  next(type: Report['type'], timeoutMs: number, match: (r: Report) => boolean = () => true): Promise<Report> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name}: no '${type}' within ${timeoutMs} ms\n${this.tail()}`))
      }, timeoutMs)
      const listener = (report: Report) => {
        if (report.type === 'fatal') {
          done()
          reject(new Error(`${this.name} failed: ${report.error}`))
        } else if (report.type === type && match(report)) {
          done()
          resolve(report)
        }
      }
      const onExit = () => {
        done()
        reject(new Error(`${this.name} exited before '${type}'\n${this.tail()}`))
      }
      const done = () => {
        clearTimeout(timer)
        this.listeners.delete(listener)
        this.child.off('exit', onExit)
      }
      this.listeners.add(listener)
      this.child.once('exit', onExit)
    })
  }

  /** Subscribes to every report; returns the unsubscribe function. */
  on(listener: (report: Report) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  request<T extends Request['type']>(
    type: T,
    body: RequestBody<T> & { worker?: number } = {} as RequestBody<T>,
    timeoutMs = 30_000,
  ): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (!this.alive) return reject(new Error(`${this.name} is not running`))
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`${this.name}: no answer to ${type} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.child.send({ rel: true, type, id, ...body })
    })
  }

  /** Sends a signal and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return
    this.child.kill(signal)
    await this.exited
  }

  /** Asks the process to close gracefully; SIGKILLs it when that does not finish in time. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.alive) return
    const closed = this.request('close', {}, timeoutMs).catch(() => undefined)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    await closed
    await this.exited
    clearTimeout(timer)
  }

  tail(lines = 30): string {
    return this.output.join('').split('\n').slice(-lines).join('\n')
  }
}
