/**
 * A throwaway redis-server of our own on a spare 127.0.0.1 port, for tests that kill, freeze and
 * restart Redis: the shared Redis on 6379 is never touched. Started as a child process (no
 * daemonize), stopped by its handle.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** True when a `redis-server` binary is on the PATH. */
export const hasRedisServerBinary = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

/** A 127.0.0.1 port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

export interface OwnRedisOptions {
  /**
   * Write an append-only file (fsync on every write) in a temporary folder, so a restart, even
   * after SIGKILL, keeps every acknowledged write; otherwise a restart starts empty.
   * @default false
   */
  persistent?: boolean
}

export class OwnRedisServer {
  private child: ChildProcess | undefined
  private readonly dir: string

  private constructor(
    readonly port: number,
    private readonly persistent: boolean,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'tidesync-redis-'))
  }

  static async start(options: OwnRedisOptions = {}): Promise<OwnRedisServer> {
    const server = new OwnRedisServer(await freePort(), options.persistent ?? false)
    try {
      await server.start()
    } catch (error) {
      server.remove()
      throw error
    }
    return server
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Starts (again) on the same port and folder; resolves when it accepts connections. */
  async start(): Promise<void> {
    if (this.child) throw new Error('redis-server is already running')
    const persistence = this.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no']
    const child = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no'],
        ...['--dir', this.dir, '--enable-debug-command', 'yes', ...persistence],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => {
        // Never leave a half-started server behind.
        child.kill('SIGKILL')
        reject(new Error(`redis-server did not start: ${output}`))
      }, 15_000)
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
        if (this.child === child) this.child = undefined
        reject(new Error(`redis-server exited with ${code}: ${output}`))
      })
    })
  }

  /** Kills the server (SIGKILL: a crash, no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child
    this.child = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
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

  /** Kills the server and deletes its folder. */
  async stop(): Promise<void> {
    await this.kill()
    this.remove()
  }

  private remove(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}
