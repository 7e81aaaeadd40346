import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'

/** True when a `redis-server` binary is on the PATH. */
export const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

/**
 * A redis-server of our own on a spare 127.0.0.1 port, as a child process (no daemonize), so a
 * test can kill and restart it; the shared Redis on 6379 is never touched. With `persistent`,
 * it writes an append-only file in a temporary folder with fsync on every write, so a restart
 * (even after SIGKILL) keeps every acknowledged write, as a production Redis that holds a
 * write buffer must; without it, a restart starts empty.
 */
export class OwnRedis {
  private child: ChildProcess | undefined
  private readonly dir: string

  private constructor(
    readonly port: number,
    private readonly persistent: boolean,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'rel-redis-'))
  }

  static async start(options: { persistent: boolean }): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort(), options.persistent)
    try {
      await redis.start()
    } catch (error) {
      redis.remove()
      throw error
    }
    return redis
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
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--daemonize',
        'no',
        '--dir',
        this.dir,
        ...persistence,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => {
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

  /** SIGKILL (a crash) and wait for the exit. */
  async kill(): Promise<void> {
    const child = this.child
    this.child = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
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
