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
// Named again at the end: CI logs are often cut to their tail, and a failure far up is lost.
const failures = []
for (const report of reports) {
  if (!existsSync(report)) continue
  const json = JSON.parse(readFileSync(report, 'utf8'))
  passed += json.numPassedTests ?? 0
  failed += json.numFailedTests ?? 0
  skipped += (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0)
  for (const file of json.testResults ?? []) {
    const where = file.name.slice(root.length)
    // A file that fails to load counts as one failure even though it ran no test.
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
      failed += 1
      failures.push(`${where}: ${firstLine(file.message)}`)
    }
    for (const test of file.assertionResults ?? []) {
      if (test.status === 'failed') {
        failures.push(`${where} > ${test.fullName}: ${firstLine(test.failureMessages?.[0])}`)
      }
    }
  }
}
for (const failure of failures) console.log(`FAILED ${failure}`)
const code = run.status ?? 1
if (code !== 0 && failures.length === 0) {
  // Every test passed, yet a run failed: vitest's unhandled errors (or a crash) fail it
  // without failing a test. turbo's "Failed:" line names the workspace.
  console.log('FAILED outside any test: an unhandled error or a crash; see the failed workspace above')
}
if (code !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(code)

function firstLine(text) {
  return String(text ?? '')
    .split('\n')[0]
    .slice(0, 300)
}
