import type { CDPSession } from 'playwright-core'

/** A Chrome trace event (the Trace Event Format). */
export interface TraceEvent {
  name: string
  cat: string
  ph: string
  pid: number
  tid: number
  /** Microseconds. */
  ts: number
  dur?: number
  args?: Record<string, unknown> & { name?: string; data?: Record<string, unknown> }
}

/**
 * The trace categories: the main thread's tasks and what ran in them (`toplevel`,
 * `devtools.timeline`), GC, user timing marks (the case's start and end), and IndexedDB on both
 * sides (the renderer's calls, the browser process's backend).
 */
export const TRACE_CATEGORIES = [
  'toplevel',
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'blink.user_timing',
  'v8',
  'IndexedDB',
  '__metadata',
]

/** Starts tracing the whole browser (every process) through a page's DevTools session. */
export async function startTrace(
  cdp: CDPSession,
  categories = TRACE_CATEGORIES,
): Promise<{ stop(): Promise<TraceEvent[]> }> {
  await cdp.send('Tracing.start', {
    transferMode: 'ReturnAsStream',
    traceConfig: {
      recordMode: 'recordAsMuchAsPossible',
      includedCategories: categories,
      excludedCategories: ['*'],
    },
  })
  return {
    async stop() {
      const complete = new Promise<{ stream?: string }>((resolve) =>
        cdp.once('Tracing.tracingComplete', resolve),
      )
      await cdp.send('Tracing.end')
      const { stream } = await complete
      if (!stream) throw new Error('the trace came without a stream')
      const chunks: string[] = []
      for (;;) {
        const read = await cdp.send('IO.read', { handle: stream, size: 1 << 22 })
        chunks.push(read.base64Encoded ? Buffer.from(read.data, 'base64').toString('utf8') : read.data)
        if (read.eof) break
      }
      await cdp.send('IO.close', { handle: stream })
      const text = chunks.join('')
      const parsed = JSON.parse(text) as { traceEvents: TraceEvent[] } | TraceEvent[]
      return Array.isArray(parsed) ? parsed : parsed.traceEvents
    },
  }
}

export interface NamedMs {
  name: string
  ms: number
  /** Thread CPU time (what the thread really ran; less than `ms` when it waited for a core). */
  cpuMs?: number
  count?: number
}

export interface TaskInfo {
  /** ms since the case started. */
  atMs: number
  ms: number
  cpuMs: number
  /** What its time went to (exclusive time of the events inside it, largest first). */
  inside: NamedMs[]
}

export interface TraceBreakdown {
  windowMs: number
  mainThread: {
    tasks: number
    /** Wall time inside tasks; the rest of the window the thread was idle. */
    busyMs: number
    /** CPU time the thread used in its tasks (less than `busyMs` when it waited for a core). */
    cpuMs: number
    tasksOver16ms: number
    tasksOver50ms: number
    /** Tasks by what started them. */
    kinds: NamedMs[]
    /** Exclusive time by event (what the thread did, without double counting nested events). */
    exclusive: NamedMs[]
    longest: TaskInfo[]
  }
  /** IndexedDB's work outside the page's thread (the browser process's backend), exclusive time by event. */
  indexedDbBackend: { ms: number; cpuMs: number; byEvent: NamedMs[] }
}

type Timed = TraceEvent & { dur: number; tdur?: number; tts?: number }

const TASK = 'ThreadControllerImpl::RunTask'
/** Events that only wrap others (their own time is scheduler bookkeeping). */
const WRAPPERS = new Set([TASK, 'RunTask'])

function threadNames(events: TraceEvent[]): Map<string, string> {
  const names = new Map<string, string>()
  for (const e of events)
    if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}/${e.tid}`, String(e.args?.name))
  return names
}

/** Exclusive (self) wall and CPU time of each complete event of one thread, in the order given (sorted by ts). */
function exclusiveTimes(events: Timed[]): Map<Timed, { ms: number; cpuMs: number }> {
  const out = new Map<Timed, { ms: number; cpuMs: number }>()
  const stack: Timed[] = []
  for (const e of events) {
    while (stack.length && stack.at(-1)!.ts + stack.at(-1)!.dur <= e.ts) stack.pop()
    const self = { ms: e.dur / 1000, cpuMs: (e.tdur ?? 0) / 1000 }
    out.set(e, self)
    const parent = stack.at(-1)
    if (parent && e.ts + e.dur <= parent.ts + parent.dur) {
      const p = out.get(parent)!
      p.ms -= e.dur / 1000
      p.cpuMs -= (e.tdur ?? 0) / 1000
    }
    stack.push(e)
  }
  return out
}

const byTs = (a: Timed, b: Timed) => a.ts - b.ts || b.dur - a.dur

function label(e: Timed): string {
  const data = e.args?.data as Record<string, unknown> | undefined
  if (e.name === 'FunctionCall' && data) return `FunctionCall ${data.functionName || '(anonymous)'}`
  if (e.name === 'EventDispatch' && data) return `EventDispatch ${data.type}`
  return e.name
}

function addTo(map: Map<string, NamedMs>, name: string, ms: number, cpuMs: number) {
  const entry = map.get(name) ?? { name, ms: 0, cpuMs: 0, count: 0 }
  entry.ms += ms
  entry.cpuMs! += cpuMs
  entry.count! += 1
  map.set(name, entry)
}

const roundAll = (list: NamedMs[], n: number) =>
  list
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((x) => ({
      ...x,
      ms: Math.round(x.ms),
      ...(x.cpuMs !== undefined ? { cpuMs: Math.round(x.cpuMs) } : {}),
    }))

/** What a main-thread task was for, from the events inside it. */
function kindOf(names: Set<string>): string {
  const js = names.has('v8.callFunction') || names.has('FunctionCall')
  if (names.has('IDBRequest::dispatchEvent') || names.has('IDBTransaction::dispatchEvent'))
    return js
      ? 'IndexedDB result, with JS (callback, promise continuations)'
      : 'IndexedDB result, no JS (a request without a listener)'
  if (names.has('FireAnimationFrame') || names.has('Commit') || names.has('PrePaint'))
    return 'frame (animation frame, paint)'
  if (js) return 'other JS (socket message, timer, …)'
  if ([...names].some((name) => name.startsWith('V8.GC') || name.endsWith('GC'))) return 'GC'
  return 'other (IPC, scheduler)'
}

/**
 * Where the page's main thread spent a traced case, between the page's `bench:run:start` and
 * `bench:run:end` marks (or the trace's end): its tasks (what started them, the longest with what ran inside), its
 * exclusive time per event, and IndexedDB's work in the browser process in the same window.
 */
export function analyzeTrace(events: TraceEvent[]): TraceBreakdown {
  const start = events.find((e) => e.name === 'bench:run:start')
  if (!start) throw new Error('the trace has no bench:run:start mark')
  const names = threadNames(events)
  const mainKey = `${start.pid}/${start.tid}`
  // A trace stopped before the case ended (a window of a long case) ends with its last event.
  const end = events.find((e) => e.name === 'bench:run:end') ?? {
    ...start,
    ts: events.reduce(
      (last, e) =>
        e.ph === 'X' && `${e.pid}/${e.tid}` === mainKey ? Math.max(last, e.ts + (e.dur ?? 0)) : last,
      start.ts,
    ),
  }
  const inWindow = (e: TraceEvent) =>
    e.ph === 'X' && e.ts >= start.ts && e.ts <= end.ts && typeof e.dur === 'number'
  const main = events.filter((e) => `${e.pid}/${e.tid}` === mainKey && inWindow(e)) as Timed[]
  main.sort(byTs)
  const self = exclusiveTimes(main)
  const exclusive = new Map<string, NamedMs>()
  for (const [e, t] of self)
    if (!WRAPPERS.has(e.name) || t.ms > 0)
      addTo(exclusive, WRAPPERS.has(e.name) ? 'task scheduling (RunTask itself)' : label(e), t.ms, t.cpuMs)
  // Tasks: the outermost RunTask events, with the events inside each.
  const tasks: Array<{ task: Timed; inside: Timed[] }> = []
  for (const e of main) {
    const current = tasks.at(-1)
    if (current && e.ts < current.task.ts + current.task.dur) current.inside.push(e)
    else if (e.name === TASK) tasks.push({ task: e, inside: [] })
  }
  const kinds = new Map<string, NamedMs>()
  for (const { task, inside } of tasks)
    addTo(kinds, kindOf(new Set(inside.map((e) => e.name))), task.dur / 1000, (task.tdur ?? 0) / 1000)
  const describe = ({ task, inside }: { task: Timed; inside: Timed[] }): TaskInfo => {
    const parts = new Map<string, NamedMs>()
    for (const e of inside) {
      const t = self.get(e)!
      addTo(parts, label(e), t.ms, t.cpuMs)
    }
    return {
      atMs: Math.round((task.ts - start.ts) / 1000),
      ms: Math.round(task.dur / 1000),
      cpuMs: Math.round((task.tdur ?? 0) / 1000),
      inside: roundAll([...parts.values()], 6),
    }
  }
  const longest = [...tasks]
    .sort((a, b) => b.task.dur - a.task.dur)
    .slice(0, 10)
    .map(describe)
  // IndexedDB in other processes (the browser's backend), per thread, exclusive.
  const backend = new Map<string, NamedMs>()
  let backendMs = 0
  let backendCpuMs = 0
  const byThread = new Map<string, Timed[]>()
  for (const e of events) {
    if (e.pid === start.pid || !inWindow(e)) continue
    const key = `${e.pid}/${e.tid}`
    const list = byThread.get(key) ?? []
    if (list.length === 0) byThread.set(key, list)
    list.push(e as Timed)
  }
  for (const [key, list] of byThread) {
    list.sort(byTs)
    for (const [e, t] of exclusiveTimes(list)) {
      if (!e.cat.includes('IndexedDB')) continue
      backendMs += t.ms
      backendCpuMs += t.cpuMs
      addTo(backend, `${e.name} [${names.get(key) ?? key}]`, t.ms, t.cpuMs)
    }
  }
  return {
    windowMs: Math.round((end.ts - start.ts) / 1000),
    mainThread: {
      tasks: tasks.length,
      busyMs: Math.round(tasks.reduce((sum, { task }) => sum + task.dur, 0) / 1000),
      cpuMs: Math.round(tasks.reduce((sum, { task }) => sum + (task.tdur ?? 0), 0) / 1000),
      tasksOver16ms: tasks.filter(({ task }) => task.dur > 16_000).length,
      tasksOver50ms: tasks.filter(({ task }) => task.dur > 50_000).length,
      kinds: roundAll([...kinds.values()], 10),
      exclusive: roundAll([...exclusive.values()], 16),
      longest,
    },
    indexedDbBackend: {
      ms: Math.round(backendMs),
      cpuMs: Math.round(backendCpuMs),
      byEvent: roundAll([...backend.values()], 10),
    },
  }
}

/** The light trace of every benchmark case: only the tasks (with their CPU time) and the marks. */
export const TASK_CATEGORIES = ['disabled-by-default-devtools.timeline', 'blink.user_timing', '__metadata']

/** The page's main-thread tasks in a case, by wall time and by the CPU time they really used. */
export interface MainThreadTasks {
  tasks: number
  longestWallMs: number
  /** The most CPU one task used: what the task costs without other processes taking the core. */
  longestCpuMs: number
  overWall50ms: number
  overCpu50ms: number
  wallMs: number
  cpuMs: number
}

/** The main thread's tasks between the page's `bench:run` marks, from a light trace (`TASK_CATEGORIES`). */
export function mainThreadTasks(events: TraceEvent[]): MainThreadTasks {
  const start = events.find((e) => e.name === 'bench:run:start')
  const end = events.find((e) => e.name === 'bench:run:end')
  if (!start || !end) throw new Error('the trace has no bench:run marks')
  const out: MainThreadTasks = {
    tasks: 0,
    longestWallMs: 0,
    longestCpuMs: 0,
    overWall50ms: 0,
    overCpu50ms: 0,
    wallMs: 0,
    cpuMs: 0,
  }
  for (const e of events as Timed[]) {
    if (e.name !== 'RunTask' || e.ph !== 'X' || e.pid !== start.pid || e.tid !== start.tid) continue
    if (e.ts < start.ts || e.ts > end.ts) continue
    const wall = e.dur / 1000
    const cpu = (e.tdur ?? 0) / 1000
    out.tasks++
    out.wallMs += wall
    out.cpuMs += cpu
    out.longestWallMs = Math.max(out.longestWallMs, wall)
    out.longestCpuMs = Math.max(out.longestCpuMs, cpu)
    if (wall > 50) out.overWall50ms++
    if (cpu > 50) out.overCpu50ms++
  }
  return out
}
