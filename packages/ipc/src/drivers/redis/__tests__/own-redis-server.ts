/**
 * A throwaway redis-server of our own, on a free port, for outage tests: the shared Redis on
 * 6379 is never stopped. Started as a child process (no daemonize), stopped by its handle.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'

/** True when a `redis-server` binary is on the PATH. */
export const hasRedisServerBinary = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()))
    })
  })
}

export class OwnRedisServer {
  private child: ChildProcess | undefined

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  static async start(): Promise<OwnRedisServer> {
    const server = new OwnRedisServer(await freePort())
    await server.start()
    return server
  }

  /** Starts (again) on the same port; resolves when it accepts connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error('already running')
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--enable-debug-command',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => {
        // Never leave a half-started server behind.
        child.kill('SIGKILL')
        this.child = undefined
        reject(new Error(`redis-server did not start: ${output}`))
      }, 10_000)
      const onData = (data: Buffer) => {
        output += data.toString()
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}: ${output}`))
      })
    })
  }

  /** Kills the server (SIGKILL: a crash, no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child) return
    this.child = undefined
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }

  /** Freezes the process (SIGSTOP): connections stay open but nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP')
  }

  resume(): void {
    this.child?.kill('SIGCONT')
  }
}
