/**
 * In the page: how responsive the main thread stays while something runs.
 *
 * - Long tasks (PerformanceObserver `longtask`): every main-thread task over 50 ms, as the
 *   browser measures it (the figure the 50 ms goal is about). `totalBlockingMs` adds up the part
 *   of each over 50 ms (Lighthouse's "total blocking time").
 * - Long animation frames (`long-animation-frame`, Chromium 123+): frames over 50 ms, with the
 *   scripts that ran in them (entry point, source, duration): what held the thread.
 * - A frame-gap monitor (requestAnimationFrame): the longest time between two frames; 16.7 ms
 *   when nothing blocks, the longest freeze a user would see otherwise.
 *
 * The observers run off the main thread's work (the browser records entries itself), the frame
 * loop costs one callback per frame.
 */

export interface LongTask {
  /** ms since the monitor started. */
  at: number
  ms: number
}

export interface FrameScript {
  /** What started the script: `IDBRequest.onsuccess`, `WebSocket.onmessage`, `Promise.then`, … */
  invoker: string
  source: string
  ms: number
}

export interface LongFrame {
  at: number
  ms: number
  /** The frame's time in scripts, in style and layout, and how long it was blocked. */
  scriptMs: number
  blockingMs: number
  scripts: FrameScript[]
}

export interface Responsiveness {
  /** The longest main-thread task (0 when none passed 50 ms: the browser reports only those). */
  longestTaskMs: number
  longTasks: number
  totalBlockingMs: number
  /** The slowest few long tasks, longest first. */
  slowest: LongTask[]
  /** The longest gap between two animation frames. */
  maxFrameGapMs: number
  /** Gaps between frames over 50 ms. */
  frameGapsOver50: number
  frames: number
  /** The longest animation frames with their scripts (null: the browser has no such entries). */
  longFrames: LongFrame[] | null
  /** Whether the browser supports `longtask` entries at all (else the figures above are empty). */
  longTaskSupported: boolean
}

const supported = (type: string) => PerformanceObserver.supportedEntryTypes?.includes(type) ?? false

/** Starts watching; `stop()` resolves with what was seen since. */
export function watchResponsiveness(keepFrames = 5): { stop(): Promise<Responsiveness> } {
  const started = performance.now()
  const tasks: LongTask[] = []
  const frames: LongFrame[] = []
  const longTaskSupported = supported('longtask')
  const frameSupported = supported('long-animation-frame')
  const onTasks = (entries: PerformanceEntryList) => {
    for (const entry of entries) {
      if (entry.startTime >= started) tasks.push({ at: entry.startTime - started, ms: entry.duration })
    }
  }
  const onFrames = (entries: PerformanceEntryList) => {
    for (const entry of entries) {
      if (entry.startTime < started) continue
      const frame = entry as PerformanceEntry & {
        blockingDuration: number
        scripts: Array<{
          duration: number
          invoker: string
          invokerType: string
          sourceURL: string
          sourceFunctionName: string
          sourceCharPosition: number
        }>
      }
      frames.push({
        at: entry.startTime - started,
        ms: entry.duration,
        scriptMs: frame.scripts.reduce((sum, script) => sum + script.duration, 0),
        blockingMs: frame.blockingDuration,
        scripts: frame.scripts.map((script) => ({
          invoker: script.invoker || script.invokerType,
          source: `${script.sourceFunctionName || '(anonymous)'}@${script.sourceURL.split('/').pop()}:${script.sourceCharPosition}`,
          ms: script.duration,
        })),
      })
    }
  }
  const taskObserver = longTaskSupported
    ? new PerformanceObserver((list) => onTasks(list.getEntries()))
    : null
  taskObserver?.observe({ type: 'longtask' })
  const frameObserver = frameSupported ? new PerformanceObserver((list) => onFrames(list.getEntries())) : null
  frameObserver?.observe({ type: 'long-animation-frame' })

  let last = started
  let maxGap = 0
  let gapsOver50 = 0
  let frameCount = 0
  let running = true
  const onFrame = (now: number) => {
    const gap = now - last
    if (gap > maxGap) maxGap = gap
    if (gap > 50) gapsOver50++
    last = now
    frameCount++
    if (running) requestAnimationFrame(onFrame)
  }
  requestAnimationFrame(onFrame)

  return {
    async stop() {
      // One more frame, so a task that just ended is reported and its gap counted.
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))
      running = false
      if (taskObserver) {
        onTasks(taskObserver.takeRecords())
        taskObserver.disconnect()
      }
      if (frameObserver) {
        onFrames(frameObserver.takeRecords())
        frameObserver.disconnect()
      }
      const slowest = [...tasks].sort((a, b) => b.ms - a.ms)
      return {
        longestTaskMs: slowest[0]?.ms ?? 0,
        longTasks: tasks.length,
        totalBlockingMs: tasks.reduce((sum, task) => sum + Math.max(0, task.ms - 50), 0),
        slowest: slowest.slice(0, 5),
        maxFrameGapMs: maxGap,
        frameGapsOver50: gapsOver50,
        frames: frameCount,
        longFrames: frameSupported ? [...frames].sort((a, b) => b.ms - a.ms).slice(0, keepFrames) : null,
        longTaskSupported,
      }
    },
  }
}
