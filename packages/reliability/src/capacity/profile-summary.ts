/**
 * Summarises V8 CPU profiles (`.cpuprofile`, from `npm run capacity -- --profile DIR`): self
 * time by package or folder and by function, so "where does a server's CPU go" has an answer.
 *
 *   npx tsx src/capacity/profile-summary.ts DIR [top=25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** Which package or area a script URL belongs to. */
function areaOf(url: string): string {
  if (!url) return '(native/V8)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  const ours = /packages\/([^/]+)\/src\/(?:([^/]+)\/)?/.exec(url)
  if (ours) return `@tidesync/${ours[1]}${ours[2] && !ours[2].includes('.') ? `/${ours[2]}` : ''}`
  if (url.startsWith('node:')) return url.split('/')[0]!
  return url
    .replace(/^file:\/\//, '')
    .split('/')
    .slice(-2)
    .join('/')
}

function summarise(profile: Profile, top: number): string {
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const byArea = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    if (us === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    const area = functionName === '(idle)' ? '(idle)' : areaOf(url)
    byArea.set(area, (byArea.get(area) ?? 0) + us)
    const name = `${functionName || '(anonymous)'} ${url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : ''}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + us)
  }
  const busy = total - (byArea.get('(idle)') ?? 0)
  const line = ([name, us]: [string, number]) =>
    `  ${((us / Math.max(1, busy)) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}`
  const sorted = (map: Map<string, number>) =>
    [...map.entries()].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1])
  return [
    `busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled (${((busy / Math.max(1, total)) * 100).toFixed(1)}%); shares below are of the busy time`,
    'by package / folder:',
    ...sorted(byArea).slice(0, top).map(line),
    'by function (self time):',
    ...sorted(byFunction).slice(0, top).map(line),
  ].join('\n')
}

function main(): void {
  const [dir, topArg] = process.argv.slice(2)
  if (!dir) {
    process.stderr.write('usage: tsx src/capacity/profile-summary.ts DIR [top]\n')
    process.exit(2)
  }
  const files = statSync(dir).isDirectory()
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(dir, f))
    : [dir]
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
    process.stdout.write(`${file}\n${summarise(profile, Number(topArg ?? 25))}\n\n`)
  }
}

main()
