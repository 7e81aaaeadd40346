import type { BrowserContext, CDPSession, Page } from 'playwright-core'
import type { CaseArgs, CaseResult, Mode } from './page.js'
import type { Responsiveness } from './page-monitor.js'
import { treeCpuMs } from './process-cpu.js'
import { type MainThreadTasks, mainThreadTasks, startTrace, TASK_CATEGORIES } from './trace.js'

/** CPU time of the timed part, ms: what the case cost, however busy the machine was. */
export interface CaseCpu {
  /** The page's main thread (DevTools `Performance` ThreadTime). */
  mainThreadMs: number
  /** The page's renderer process, every thread (ProcessTime; a worker's too). */
  rendererMs: number
  /** Wall time the main thread spent in tasks (TaskDuration): more than `mainThreadMs` when it waited for a core. */
  mainThreadTaskWallMs: number
  /** Every browser process (the IndexedDB backend, the network service, the renderer), from /proc; null elsewhere. */
  browserAllMs: number | null
  /** The same by process: `browser` (IndexedDB's backend runs there), `renderer`, `utility`, … */
  byProcess: Record<string, number> | null
}

/** One timed case as measured from outside the page. */
export interface Sample extends CaseResult {
  cpu: CaseCpu
  /** The main thread's tasks with their CPU time (a light trace; null when not traced). */
  tasks: MainThreadTasks | null
  /** The page's JS heap (V8, `Runtime.getHeapUsage`) after a GC right before the case, MB. */
  heapBeforeMb: number
  /** The most it used while the case ran (sampled every 50 ms), MB. */
  peakHeapMb: number
  responsiveness: Responsiveness
}

/** Rejects after `ms` (the page keeps going; the caller closes the browser). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const mb = (bytes: number) => bytes / 1024 / 1024

/** A loaded benchmark page (`page.ts`) and the DevTools session that watches its heap. */
export class BenchPage {
  /** Errors the page reported (uncaught errors, console errors). */
  readonly problems: string[] = []

  private constructor(
    readonly page: Page,
    readonly cdp: CDPSession,
    private readonly browserPid: number | null,
  ) {
    page.on('pageerror', (error) => this.problems.push(`pageerror: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') this.problems.push(`console: ${message.text()}`)
    })
  }

  static async open(context: BrowserContext, url: string, browserPid: number | null): Promise<BenchPage> {
    const page = await context.newPage()
    const cdp = await context.newCDPSession(page)
    const bench = new BenchPage(page, cdp, browserPid)
    await cdp.send('Performance.enable')
    await page.goto(url, { timeout: 30_000 })
    await page.waitForFunction('document.title === "ready"', undefined, { timeout: 30_000 })
    return bench
  }

  private evaluate<T>(expression: string, timeoutMs: number, what: string): Promise<T> {
    return withTimeout(this.page.evaluate(expression) as Promise<T>, timeoutMs, what)
  }

  private async cpuNow(): Promise<{
    thread: number
    process: number
    task: number
    all: Record<string, number> | null
  }> {
    const { metrics } = await this.cdp.send('Performance.getMetrics')
    const value = (name: string) => (metrics.find((m) => m.name === name)?.value ?? Number.NaN) * 1000
    return {
      thread: value('ThreadTime'),
      process: value('ProcessTime'),
      task: value('TaskDuration'),
      all: this.browserPid === null ? null : treeCpuMs(this.browserPid),
    }
  }

  async heapUsedMb(): Promise<number> {
    const { usedSize } = await this.cdp.send('Runtime.getHeapUsage')
    return mb(usedSize)
  }

  /**
   * Runs one case: prepare (untimed), GC, run (timed, heap sampled), finish (checks what was
   * stored). `around` starts and stops a recording (a profile, a trace) around the timed part.
   */
  async runCase(
    mode: Mode,
    args: CaseArgs,
    timeoutMs: number,
    options: { traceTasks?: boolean; around?: { start(): Promise<void>; stop(): Promise<void> } } = {},
  ): Promise<Sample> {
    const { around, traceTasks = false } = options
    const what = `${mode} of ${args.count} records`
    await this.evaluate(
      `__bench.prepare(${JSON.stringify(mode)}, ${JSON.stringify(args)})`,
      timeoutMs,
      `preparing ${what}`,
    )
    let result: CaseResult
    let cpu: CaseCpu
    let tasks: MainThreadTasks | null = null
    let peak = 0
    let heapBefore = 0
    try {
      await this.cdp.send('HeapProfiler.collectGarbage')
      heapBefore = await this.heapUsedMb()
      peak = heapBefore
      let sampling = false
      const timer = setInterval(() => {
        if (sampling) return
        sampling = true
        this.heapUsedMb().then(
          (used) => {
            peak = Math.max(peak, used)
            sampling = false
          },
          () => {
            sampling = false
          },
        )
      }, 50)
      await around?.start()
      const trace = traceTasks ? await startTrace(this.cdp, TASK_CATEGORIES) : null
      const before = await this.cpuNow()
      try {
        result = await this.evaluate<CaseResult>(`__bench.run(${JSON.stringify(mode)})`, timeoutMs, what)
      } finally {
        clearInterval(timer)
      }
      const after = await this.cpuNow()
      if (trace) tasks = mainThreadTasks(await trace.stop())
      await around?.stop()
      cpu = {
        mainThreadMs: after.thread - before.thread,
        rendererMs: after.process - before.process,
        mainThreadTaskWallMs: after.task - before.task,
        browserAllMs: null,
        byProcess: null,
      }
      if (after.all && before.all) {
        const byProcess: Record<string, number> = {}
        for (const [kind, ms] of Object.entries(after.all)) byProcess[kind] = ms - (before.all[kind] ?? 0)
        cpu.byProcess = byProcess
        cpu.browserAllMs = Object.values(byProcess).reduce((sum, ms) => sum + ms, 0)
      }
      peak = Math.max(peak, await this.heapUsedMb())
    } finally {
      await this.evaluate(`__bench.finish(${JSON.stringify(mode)})`, 120_000, `finishing ${what}`)
    }
    return { ...result, cpu, tasks, heapBeforeMb: heapBefore, peakHeapMb: peak }
  }

  async deleteAllDatabases(): Promise<number> {
    return this.evaluate<number>('__bench.deleteAll()', 120_000, 'deleting the databases')
  }

  async close(): Promise<void> {
    await this.cdp.detach().catch(() => {})
    await this.page.close().catch(() => {})
  }
}
