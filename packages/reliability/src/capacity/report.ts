/** The capacity run as a readable table, and the results file (one entry per scenario). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { formatJson } from './format-json.js'
import type { LatencySummary } from './latency.js'
import type { CapacityResult } from './run.js'

const lat = (s: LatencySummary) => (s.count === 0 ? '-' : `${s.p50} / ${s.p90} / ${s.p99} / ${s.max}`)
const pct = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : `${n}%`)

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')
}

export function formatCapacity(result: CapacityResult): string {
  const s = result.settings
  const out: string[] = []
  out.push(
    `capacity: ${result.scenario}, ${s.servers} server(s), ${s.clients} clients, ${result.connections.subscribers} subscribers, ${s.realClients} real clients (load average at start ${result.machine.loadAverageAtStart.join(' ')}, ${result.machine.cpus} cores)`,
  )
  const rows: Array<[string, string]> = []
  for (const [name, server] of Object.entries(result.servers)) {
    rows.push([
      `${name} connections (idle)`,
      `${server.idle.sockets} sockets, ${server.idle.subscriptions} subscriptions`,
    ])
    rows.push([
      `${name} memory`,
      `rss ${server.baselineRssMb} MB -> ${server.idleRssMb} MB idle (${server.idleRssPerConnectionKb ?? '-'} KB/conn, heap ${server.idleHeapPerConnectionKb ?? '-'} KB/conn) -> peak ${server.activePeakRssMb ?? '-'} MB active (${server.activeRssPerConnectionKb ?? '-'} KB/conn)`,
    ])
    if (server.logCount > 0)
      rows.push([`${name} warnings/errors logged`, `${server.logCount}: ${server.firstLogs[0] ?? ''}`])
  }
  const cpuRow = (label: string, c: CapacityResult['idleCpu']) =>
    rows.push([
      label,
      `servers ${pct(c.cpuPercent.serversTotal)} (${Object.values(c.cpuPercent.servers).map(pct).join(' + ')}), postgres ${pct(c.cpuPercent.postgres)} (+ shared ${pct(c.cpuPercent.postgresShared)}), redis ${pct(c.cpuPercent.redis)}, generator ${pct(c.cpuPercent.generator)} (loop delay p99 ${c.generatorLoopDelayMs.p99} ms); machine ${pct(c.cpuPercent.machine)} of ${result.machine.cpus * 100}%`,
    ])
  const waitsRow = (label: string, c: CapacityResult['idleCpu']) => {
    const w = c.postgresWaits
    if (!w || w.samples === 0) return
    const states = Object.entries(w.states)
      .slice(0, 5)
      .map(([state, share]) => `${state} ${share}%`)
      .join(', ')
    rows.push([label, `${w.averageBackends} backends on average: ${states}`])
  }
  cpuRow('CPU idle (% of one core)', result.idleCpu)
  const l = result.load
  if (l && l.pushesScheduled + l.pullsScheduled > 0) {
    rows.push([
      'pushes offered / achieved',
      `${l.pushesOfferedPerSecond}/s / ${l.pushesAchievedPerSecond}/s (${l.changesAchievedPerSecond} changes/s)`,
    ])
    rows.push([
      'pushes scheduled / sent / acked',
      `${l.pushesScheduled} / ${l.pushesSent} / ${l.pushesAcknowledged} (unsent ${l.unsent})`,
    ])
    rows.push(['push ack ms p50/p90/p99/max', `${lat(l.pushAckMs)} (from the scheduled send)`])
    rows.push(['push service ms p50/p90/p99/max', `${lat(l.pushServiceMs)} (from the actual send)`])
    if (l.pullsScheduled > 0)
      rows.push(['pulls ok / scheduled, ack ms', `${l.pullsOk} / ${l.pullsScheduled}, ${lat(l.pullAckMs)}`])
  }
  if (l) {
    if (Object.keys(l.errors).length > 0) rows.push(['errors', JSON.stringify(l.errors)])
    cpuRow('CPU under load', l.cpu)
    waitsRow('PostgreSQL backends under load', l.cpu)
  }
  if (result.ramp) {
    for (const step of result.ramp.steps) {
      rows.push([
        `ramp ${step.rate}/s`,
        `achieved ${step.pushesAchievedPerSecond}/s, ack ${lat(step.pushAckMs)} ms, unsent ${step.unsent}, servers ${pct(step.cpu.cpuPercent.serversTotal)}, postgres ${pct(step.cpu.cpuPercent.postgres)}, redis ${pct(step.cpu.cpuPercent.redis)}, generator ${pct(step.cpu.cpuPercent.generator)}, machine ${pct(step.cpu.cpuPercent.machine)}${step.held ? '' : '  <- over the limit'}`,
      ])
      waitsRow(`ramp ${step.rate}/s postgres`, step.cpu)
    }
    rows.push([
      `ramp: last rate with p99 <= ${result.ramp.limitMs} ms`,
      `${result.ramp.lastRateHeld ?? 'none'} pushes/s`,
    ])
  }
  const f = result.fanout
  if (f && f.changes > 0) {
    rows.push([
      'fan-out',
      `${f.acknowledged} updates x ${f.subscribers} subscribers: ${f.deliveries} deliveries, ${f.missing} missing`,
    ])
    rows.push(['fan-out update ack ms p50/p90/p99/max', lat(f.ackMs)])
    rows.push(['fan-out ms from send p50/p90/p99/max', lat(f.fromSendMs)])
    rows.push(['fan-out ms from ack p50/p90/p99/max', lat(f.fromAckMs)])
    rows.push(['fan-out ms to the last subscriber', lat(f.allReachedMs)])
  }
  const w = result.work
  if (w?.perPush) {
    const top = Object.entries(w.ipcByMethod)
      .slice(0, 4)
      .map(([method, n]) => `${method} ${n}`)
      .join(', ')
    rows.push([
      'server work per acknowledged push',
      `${w.perPush.pgQueries} PostgreSQL queries, ${w.perPush.ipcCalls} IPC calls (${top}), ${w.perPush.serverCpuMs ?? 'n/a'} ms server CPU`,
    ])
  }
  rows.push([
    'live echoes to pushing clients',
    `${result.liveEchoes}; client disconnects ${result.clientDisconnects}`,
  ])
  const v = result.verification
  rows.push([
    'load in the database',
    `${v.load.acknowledged} acknowledged changes, ${v.load.recordsChecked} records checked exactly, ${v.load.uncertainRecords} uncertain, ${v.load.unresolved} unresolved, ${v.load.rejected} rejected, ${v.load.problems.length} problem(s)`,
  ])
  if (v.real.verify)
    rows.push([
      'real clients',
      `${v.real.clients} clients, ${v.real.writes} writes, quiesced in ${v.real.quiesceMs} ms, ${v.real.verify.liveRecords} records, ${v.real.verify.problems.length} problem(s)`,
    ])
  out.push(table(rows))
  const problems = [...v.load.problems, ...(v.real.verify?.problems ?? []), ...v.real.failures]
  if (problems.length > 0) out.push(`problems:\n    ${problems.slice(0, 20).join('\n    ')}`)
  for (const note of result.notes) out.push(`note: ${note}`)
  out.push(result.ok ? 'result: OK' : 'result: PROBLEMS FOUND')
  return out.join('\n')
}

/**
 * Where a run goes in the results file: its scenario, on the deployment (2 servers);
 * with another number of servers, `<scenario>-<n>-servers`, so that the scaling runs (1, 2, 3)
 * sit side by side.
 */
export function resultKey(result: Pick<CapacityResult, 'scenario' | 'settings'>): string {
  const servers = result.settings.servers
  return servers === 2 ? result.scenario : `${result.scenario}-${servers}-servers`
}

/** Writes `result` into `file` under `resultKey`, keeping the other runs' last results. */
export function writeResults(file: string, result: CapacityResult): void {
  let runs: Record<string, unknown> = {}
  if (existsSync(file)) {
    try {
      runs = (JSON.parse(readFileSync(file, 'utf8')) as { runs?: Record<string, unknown> }).runs ?? {}
    } catch {
      runs = {}
    }
  }
  runs[resultKey(result)] = result
  writeFileSync(file, `${formatJson({ kind: 'tidesync capacity results', runs })}\n`)
}
