#!/usr/bin/env node
// Runs every workspace's tests through turbo, then prints the workspace totals from vitest's
// JSON reports as the last line: "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const workspaces = ['packages', 'apps'].flatMap((dir) =>
  existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((name) => join(root, dir, name)) : [],
)
const reports = workspaces.map((dir) => join(dir, '.vitest-report.json'))
for (const report of reports) rmSync(report, { force: true })

// --continue: one failing workspace must not hide the results of the others.
const args = ['turbo', 'run', 'test', '--concurrency=1', '--continue', ...process.argv.slice(2)]
const run = spawnSync('npx', args, { cwd: root, stdio: 'inherit' })

let passed = 0
let failed = 0
let skipped = 0
for (const report of reports) {
  if (!existsSync(report)) continue
  const json = JSON.parse(readFileSync(report, 'utf8'))
  passed += json.numPassedTests ?? 0
  failed += json.numFailedTests ?? 0
  skipped += (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0)
  // A file that fails to load counts as one failure even though it ran no test.
  for (const file of json.testResults ?? []) {
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed += 1
  }
}
const code = run.status ?? 1
if (code !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(code)
