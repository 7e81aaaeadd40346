import { fileURLToPath } from 'node:url'
import { ChildHandle } from './child.js'
import type { ServerConfig, ServerStats } from './messages.js'

const SERVER_FILE = fileURLToPath(new URL('./server-process.ts', import.meta.url))

/** A tidesync server process (see server-process.ts), restartable on the same port. */
export class ServerProcess {
  private constructor(
    private config: ServerConfig,
    public handle: ChildHandle,
    readonly port: number,
  ) {}

  static async start(config: ServerConfig): Promise<ServerProcess> {
    const { handle, ready } = await ChildHandle.start(config.name, SERVER_FILE, {
      RELIABILITY_SERVER: JSON.stringify(config),
    })
    if (ready.type !== 'ready') throw new Error('unreachable')
    return new ServerProcess({ ...config, port: ready.port }, handle, ready.port)
  }

  get name(): string {
    return this.config.name
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get alive(): boolean {
    return this.handle.alive
  }

  /**
   * Starts the process again (after a kill), on the same port and with the same config. Like a
   * process supervisor, it tries again when the start-up fails (up to `attempts` times); each
   * failure is returned, so tests can report it.
   */
  async restart(attempts = 3): Promise<string[]> {
    if (this.handle.alive) throw new Error(`${this.name} is still running`)
    const failures: string[] = []
    for (;;) {
      try {
        const { handle } = await ChildHandle.start(this.name, SERVER_FILE, {
          RELIABILITY_SERVER: JSON.stringify(this.config),
        })
        this.handle = handle
        return failures
      } catch (error) {
        failures.push((error as Error).message.split('\n').slice(0, 3).join(' | '))
        if (failures.length >= attempts) throw error
      }
    }
  }

  stats(gc = false): Promise<ServerStats> {
    return this.handle.request('stats', { gc }) as Promise<ServerStats>
  }

  flush(timeoutMs = 60_000): Promise<ServerStats> {
    return this.handle.request('flush', {}, timeoutMs) as Promise<ServerStats>
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.handle.kill(signal)
  }

  stop(): Promise<void> {
    return this.handle.stop()
  }
}
