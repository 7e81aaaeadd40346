import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url))
const demoRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface CliRun {
  /** The exit status (null when it was killed). */
  code: number | null
  stdout: string
  stderr: string
}

export interface RunSqlOptions {
  /**
   * `npm`: `npm run demo:sql -- <args>` at the repository root, exactly as the README says
   * (slower: two npm processes). `direct`: `node --import tsx server/sql-cli.ts <args>`.
   * @default 'npm'
   */
  via?: 'npm' | 'direct'
  /** Killed after this long. @default 60_000 */
  timeoutMs?: number
}

/**
 * Runs the demo's SQL command in a child process against the demo listening on `port` (given
 * as `PORT`, as a person would), with standard input closed.
 */
export function runDemoSql(port: number, args: string[], options: RunSqlOptions = {}): Promise<CliRun> {
  const viaNpm = (options.via ?? 'npm') === 'npm'
  const [command, commandArgs, cwd] = viaNpm
    ? ['npm', ['run', 'demo:sql', '--', ...args], repoRoot]
    : [process.execPath, ['--import', 'tsx', 'server/sql-cli.ts', ...args], demoRoot]
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, {
      cwd,
      env: { ...process.env, PORT: String(port), HOST: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
