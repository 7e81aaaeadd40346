import { readdirSync, readFileSync } from 'node:fs'

/**
 * CPU time of the browser's processes, from /proc (Linux): what a case cost the machine however
 * busy it was (the wall times stretch when other work takes the cores; CPU time barely does).
 * Elsewhere it reports nothing.
 */

const TICK_MS = 10 // USER_HZ is 100 on Linux

interface Stat {
  pid: number
  ppid: number
  cpuMs: number
}

function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { pid, ppid: Number(fields[1]), cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS }
  } catch {
    return null
  }
}

function allStats(): Stat[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  return entries.flatMap((name) =>
    /^\d+$/.test(name) ? [readStat(Number(name))].filter((s): s is Stat => s !== null) : [],
  )
}

/** The browser's main process: the one started with `--user-data-dir=<profile>` and no `--type`. */
export function findBrowserPid(profile: string): number | null {
  for (const { pid } of allStats()) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.includes(`--user-data-dir=${profile}`) && !args.some((arg) => arg.startsWith('--type=')))
        return pid
    } catch {
      // gone meanwhile
    }
  }
  return null
}

/**
 * User + system CPU ms of `root` and every process under it, by kind: `browser` (the root: the
 * IndexedDB backend and the IPC run there), and each child's `--type` (`renderer`, `utility`,
 * `gpu-process`, `zygote`).
 */
export function treeCpuMs(root: number): Record<string, number> {
  const stats = allStats()
  const children = new Map<number, Stat[]>()
  for (const stat of stats) {
    const list = children.get(stat.ppid) ?? []
    if (list.length === 0) children.set(stat.ppid, list)
    list.push(stat)
  }
  const byKind: Record<string, number> = {}
  const rootStat = stats.find((s) => s.pid === root)
  if (!rootStat) return byKind
  const queue = [rootStat]
  while (queue.length) {
    const stat = queue.pop()!
    const kind = stat.pid === root ? 'browser' : kindOf(stat.pid)
    byKind[kind] = (byKind[kind] ?? 0) + stat.cpuMs
    queue.push(...(children.get(stat.pid) ?? []))
  }
  return byKind
}

function kindOf(pid: number): string {
  try {
    // Chromium rewrites its children's command lines (one string, spaces between the flags).
    return /--type=([\w-]+)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))?.[1] ?? 'other'
  } catch {
    return 'other'
  }
}
