import { spawn } from 'node:child_process'

/** What a finished command left behind. */
export interface RunResult {
  /** The exit code; `null` when the process was killed (timeout) or could not start. */
  code: number | null
  /** stdout and stderr, interleaved as they arrived. */
  output: string
  /** stdout alone. */
  stdout: string
  /** The command line, for failure messages. */
  command: string
  /** Wall time in milliseconds. */
  ms: number
}

export interface RunOptions {
  cwd: string
  /** Kill the process (and its group) after this long. @default 180000 */
  timeoutMs?: number
  /** The environment. @default process.env */
  env?: NodeJS.ProcessEnv
}

/**
 * Runs a command and resolves with its exit code and output. Never rejects: a command that
 * cannot start or times out resolves with `code: null` and says why in `output`, so callers
 * can start several runs at once and assert on each.
 */
export function run(file: string, args: string[], options: RunOptions): Promise<RunResult> {
  const command = [file, ...args].join(' ')
  const started = performance.now()
  return new Promise((resolve) => {
    let output = ''
    let stdout = ''
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs ?? 180_000} ms]`
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          child.kill('SIGKILL')
        }
      }
    }, options.timeoutMs ?? 180_000)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
    })
    const finish = (code: number | null) => {
      clearTimeout(timer)
      resolve({ code, output, stdout, command, ms: Math.round(performance.now() - started) })
    }
    child.on('error', (error) => {
      output += `\n[could not run: ${error.message}]`
      finish(null)
    })
    child.on('close', (code) => finish(code))
  })
}

/** A failure message: the command, where, its exit code and its whole output. */
export function describeRun(result: RunResult, cwd: string): string {
  return `\`${result.command}\` in ${cwd} exited with ${result.code} after ${result.ms} ms:\n${result.output}`
}
