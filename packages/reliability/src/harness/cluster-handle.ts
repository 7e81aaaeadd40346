import { fileURLToPath } from 'node:url'
import { ChildHandle } from './child.js'
import type { Report, ServerConfig, ServerStats } from './messages.js'
import { freePort } from './ports.js'

const PRIMARY_FILE = fileURLToPath(new URL('./cluster-primary.ts', import.meta.url))

type WorkerExit = Extract<Report, { type: 'worker-exit' }>

/** A cluster primary process and its tidesync workers (see cluster-primary.ts). */
export class ClusterProcess {
  /** Live workers: cluster worker id -> pid. */
  readonly workers = new Map<number, number>()
  readonly exits: Array<WorkerExit & { at: number }> = []

  private constructor(
    readonly handle: ChildHandle,
    readonly port: number,
  ) {
    handle.on((report) => {
      if (report.type !== 'worker-exit') return
      this.workers.delete(report.worker)
      this.exits.push({ ...report, at: Date.now() })
    })
  }

  static async start(config: Omit<ServerConfig, 'port' | 'ipc'>, workers = 2): Promise<ClusterProcess> {
    const port = await freePort()
    const server: ServerConfig = { ...config, port, ipc: { driver: 'cluster' } }
    const { handle, ready } = await ChildHandle.start(
      'cluster-primary',
      PRIMARY_FILE,
      { RELIABILITY_SERVER: JSON.stringify(server), RELIABILITY_WORKERS: String(workers) },
      90_000,
    )
    const cluster = new ClusterProcess(handle, port)
    if (ready.type === 'ready') for (const w of ready.workers ?? []) cluster.workers.set(w.worker, w.pid)
    return cluster
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  stats(worker: number, gc = false): Promise<ServerStats> {
    return this.handle.request('stats', { worker, gc }) as Promise<ServerStats>
  }

  /** Flushes through a live worker (the pending state lives in the primary's store). */
  async flush(): Promise<void> {
    const [worker] = this.workers.keys()
    if (worker === undefined) throw new Error('no live worker')
    await this.handle.request('flush', { worker }, 60_000)
  }

  arm(worker: number): Promise<unknown> {
    return this.handle.request('arm', { worker, crash: 'in-flush-after-commit' })
  }

  /** Waits for `worker` to exit. */
  async exited(worker: number, timeoutMs: number): Promise<WorkerExit & { at: number }> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const exit = this.exits.find((e) => e.worker === worker)
      if (exit) return exit
      if (Date.now() > deadline) throw new Error(`worker ${worker} did not exit within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Forks a replacement worker; resolves once it serves. */
  async fork(): Promise<number> {
    const { worker, pid } = (await this.handle.request('fork', {}, 90_000)) as { worker: number; pid: number }
    this.workers.set(worker, pid)
    return worker
  }

  async stop(): Promise<void> {
    await this.handle.stop(20_000)
    this.killWorkers()
  }

  /** SIGKILLs every worker (by pid) and the primary. */
  async kill(): Promise<void> {
    this.killWorkers()
    await this.handle.kill('SIGKILL')
  }

  private killWorkers(): void {
    for (const pid of this.workers.values()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    this.workers.clear()
  }
}
