import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TS_EXEC_ARGV } from './server-handle.js'

/**
 * Runs one benchmark case in a process of its own (its peak memory is its own, and nothing a
 * previous case left behind slows it down) and resolves with the JSON object it prints last.
 */
export function runCase<T>(
  file: string,
  args: Record<string, unknown>,
  extraNodeArgs: string[] = [],
): Promise<T> {
  const path = fileURLToPath(new URL(`../cases/${file}`, import.meta.url))
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...extraNodeArgs, ...TS_EXEC_ARGV, path, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0) return reject(new Error(`${file} exited with ${code}: ${out.slice(-2000)}`))
      try {
        resolve(JSON.parse(last) as T)
      } catch {
        reject(new Error(`${file} printed no result: ${out.slice(-2000)}`))
      }
    })
  })
}

/** The case's arguments (what `runCase` passed). */
export function caseArgs<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T
}

/** Prints the case's result (the last line of its output) and ends the process. */
export function finish(result: unknown): never {
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(0)
}
