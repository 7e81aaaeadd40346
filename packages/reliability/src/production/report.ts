/** The production soak as a readable summary, and its results file. */
import { writeFileSync } from 'node:fs'
import { formatJson } from '../capacity/format-json.js'
import type { LatencySummary } from '../capacity/latency.js'
import type { ProductionResult } from './run.js'

const lat = (s: LatencySummary) => (s.count === 0 ? '-' : `${s.p50} / ${s.p90} / ${s.p99} / ${s.max}`)
const pct = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : `${n}%`)

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')
}

export function formatProduction(result: ProductionResult): string {
  const s = result.settings
  const l = result.load
  const out: string[] = []
  out.push(
    `production soak: ${result.deployment.servers} servers, ${l.clients} protocol clients + ${result.realClients.clients} real clients, ${s.rate} changes/s offered as ${l.pushesPerSecond} pushes/s of ${l.changesPerPush} changes, ${s.duration} s, faults: ${s.faults.join(', ') || 'none'} (load average at start ${result.machine.loadAverageAtStart.join(' ')}, ${result.machine.cpus} cores)`,
  )
  out.push(`  Redis: ${result.deployment.redis}; PostgreSQL: ${result.deployment.postgres}`)
  out.push('')
  out.push('  window        offered/s  acked/s  ack p50 ms  ack p99 ms  backlog  errors / faults')
  for (const w of result.windows) {
    const errors = Object.entries(w.errors)
      .map(([code, n]) => `${code.replace(/^push:/, '')} ${n}`)
      .join(', ')
    const marks = [errors, w.faults.length ? `[${w.faults.join(', ')}]` : ''].filter(Boolean).join(' ')
    out.push(
      `  ${w.window.padEnd(12)} ${String(w.offeredChangesPerSecond).padStart(9)}  ${String(w.achievedChangesPerSecond).padStart(7)}  ${String(w.ackMs.p50).padStart(10)}  ${String(w.ackMs.p99).padStart(10)}  ${String(w.backlogMax).padStart(7)}  ${marks}`,
    )
  }
  out.push('')
  const rows: Array<[string, string]> = []
  rows.push([
    'changes offered / acknowledged',
    `${l.changesOffered} / ${l.changesAcknowledged} (${l.offeredChangesPerSecond}/s offered over ${l.offeredSeconds} s)`,
  ])
  rows.push([
    'changes/s achieved',
    `${l.achievedChangesPerSecondDuringLoad}/s while offered, ${l.achievedChangesPerSecond}/s to the last answer (drain ${l.drainMs} ms); ${l.windowsUnder90Percent} window(s) under 90 % of the offered rate`,
  ])
  rows.push([
    'writes/s with the real clients',
    `${result.totalWritesPerSecond}/s (real clients ${result.realClients.writes} writes, ${result.realClients.writesPerSecond}/s)`,
  ])
  rows.push([
    'push ack ms p50/p90/p99/max',
    `${lat(l.pushAckMs)} (from the scheduled send, resends included)`,
  ])
  rows.push(['push service ms p50/p90/p99/max', `${lat(l.pushServiceMs)} (from the last send)`])
  rows.push([
    'resends / disconnects',
    `${l.resends} pushes sent again, ${l.disconnects} protocol client disconnects`,
  ])
  rows.push(['errors by code', Object.keys(l.errors).length ? JSON.stringify(l.errors) : 'none'])
  for (const f of result.faults) {
    rows.push([
      `fault ${f.fault} at ${f.injectedAtS} s`,
      `${f.what}: back after ${f.outageMs} ms, recovered after ${f.recoveryMs === null ? 'never' : `${f.recoveryMs} ms`}${f.recoveredAfterLoadEnded ? ' (only once the load ended)' : ''} (${f.recoveredWhen}; backlog peak ${f.backlogPeak}), errors ${JSON.stringify(f.errors)}, ${f.loadDisconnects} disconnects`,
    ])
  }
  const c = result.cpuAverage
  const serverNames = Object.keys(result.servers)
  rows.push([
    'CPU average (% of one core)',
    `servers ${pct(c.serversTotal)} (${serverNames.map((name) => pct(c[name])).join(' + ')}), postgres ${pct(c.postgres)} (+ shared ${pct(c.postgresShared)}), redis ${pct(c.redis)}, generator ${pct(c.generator)}; machine ${pct(c.machine)} of ${result.machine.cpus * 100}%`,
  ])
  for (const [name, server] of Object.entries(result.servers)) {
    rows.push([
      name,
      `${server.restarts} restart(s), ${server.sockets ?? '?'} sockets at the end, ${result.balancerConnections[name] ?? 0} connections made, ${server.bufferErrors ?? '?'} write-buffer errors, ${server.logCount ?? '?'} warnings/errors logged${server.firstLogs[0] ? `: ${server.firstLogs[0]}` : ''}`,
    ])
  }
  const v = result.verification
  rows.push([
    'load in the database',
    `${v.load.acknowledged} acknowledged changes, ${v.load.recordsChecked} records checked exactly, ${v.load.uncertainRecords} uncertain, ${v.load.unresolved} unresolved, ${v.load.rejected} rejected, ${v.load.problems.length} problem(s)`,
  ])
  if (v.real.verify)
    rows.push([
      'real clients',
      `${v.real.clients} clients, ${v.real.writes} writes, quiesced in ${v.real.quiesceMs} ms, ${v.real.verify.liveRecords} records, likes ${v.real.verify.likesInDatabase} = expected ${v.real.verify.likesExpected}, ${v.real.verify.problems.length} problem(s)`,
    ])
  out.push(table(rows))
  if (result.problems.length > 0) out.push(`problems:\n    ${result.problems.slice(0, 30).join('\n    ')}`)
  for (const note of result.notes) out.push(`note: ${note}`)
  out.push(
    `result: ${result.ok ? 'OK (nothing acknowledged lost, every real client equals the database)' : 'PROBLEMS FOUND'}; rate ${l.held ? 'held' : 'NOT held'}`,
  )
  return out.join('\n')
}

/** Writes `result` as the whole of `file` (the production soak's own results file). */
export function writeProductionResults(file: string, result: ProductionResult): void {
  writeFileSync(file, `${formatJson(result)}\n`)
}
