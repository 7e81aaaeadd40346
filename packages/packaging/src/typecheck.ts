import { join } from 'node:path'
import { packageNameOf } from './declared-imports.js'
import { type RunResult, run } from './run.js'

/**
 * Third-party packages whose own .d.ts files fail `skipLibCheck: false` in any app, with or
 * without tidesync. Their errors are counted but not held against us; an error in any other
 * package, in our packages or in the app's code fails the check.
 */
export const KNOWN_BROKEN_DECLARATIONS: Record<string, string> = {
  'drizzle-orm':
    "~80 errors in its other dialects' .d.ts (gel, mysql, singlestore: missing getSQL, optional drivers, Buffer) " +
    'in any app that imports drizzle-orm: https://github.com/drizzle-team/drizzle-orm/issues/5187',
  '@electric-sql/pglite':
    'its .d.ts use the WebAssembly, Emscripten and IndexedDB globals, which a Node app without lib "DOM" ' +
    'and @types/emscripten lacks',
}

/** One `error TSxxxx` line of tsc's output, with the lines that continue it. */
export interface Diagnostic {
  /** The file, as tsc prints it (relative to the app); `null` for a global error. */
  file: string | null
  /** The package the file belongs to (`drizzle-orm`); `null` for the app's own files. */
  packageName: string | null
  code: string
  text: string
}

export interface TypecheckResult {
  run: RunResult
  diagnostics: Diagnostic[]
  /** Errors that count: in the app, in our packages, or in a third-party package not listed above. */
  counted: Diagnostic[]
  /** Errors inside the known-broken third-party declarations, by package. */
  tolerated: Record<string, number>
}

const ERROR_LINE = /^(?:(.+?)\(\d+,\d+\): )?error (TS\d+): /

/** The package a path inside node_modules belongs to (the innermost node_modules wins). */
function packageOfPath(file: string): string | null {
  const at = file.lastIndexOf('node_modules/')
  return at === -1 ? null : packageNameOf(file.slice(at + 'node_modules/'.length))
}

/** Splits tsc's plain output (`--pretty false`) into diagnostics. */
export function parseDiagnostics(output: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = []
  for (const line of output.split('\n')) {
    const match = ERROR_LINE.exec(line)
    if (match) {
      const file = match[1] ?? null
      diagnostics.push({ file, packageName: file && packageOfPath(file), code: match[2]!, text: line })
    } else if (line.startsWith(' ') && diagnostics.length > 0) {
      diagnostics[diagnostics.length - 1]!.text += `\n${line}`
    }
  }
  return diagnostics
}

/**
 * Runs the app's own TypeScript (`node_modules/typescript`) with `tsc --noEmit -p <project>`.
 * It passes when every error tsc reports lies in a known-broken third-party package; a tsc that
 * fails without any parsable error (a crash, a bad tsconfig) never passes.
 */
export async function typecheck(appDir: string, project: string): Promise<TypecheckResult> {
  const tsc = join(appDir, 'node_modules/typescript/bin/tsc')
  const result = await run(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', project], {
    cwd: appDir,
    timeoutMs: 240_000,
  })
  const diagnostics = parseDiagnostics(result.output)
  const tolerated: Record<string, number> = {}
  const counted: Diagnostic[] = []
  for (const diagnostic of diagnostics) {
    const pkg = diagnostic.packageName
    if (pkg !== null && pkg in KNOWN_BROKEN_DECLARATIONS) {
      tolerated[pkg] = (tolerated[pkg] ?? 0) + 1
    } else {
      counted.push(diagnostic)
    }
  }
  return { run: result, diagnostics, counted, tolerated }
}

/** Whether a typecheck passed (see `typecheck`). */
export function typecheckPassed(result: TypecheckResult): boolean {
  if (result.counted.length > 0) return false
  return result.run.code === 0 || result.diagnostics.length > 0
}

/** A failure message: the errors that count first, then tsc's whole output. */
export function describeTypecheck(result: TypecheckResult, appDir: string): string {
  const counted = result.counted.map((diagnostic) => diagnostic.text).join('\n')
  return (
    `${result.counted.length} type error(s) that count in ${appDir}:\n${counted}\n\n` +
    `\`${result.run.command}\` exited with ${result.run.code} after ${result.run.ms} ms; its whole output:\n${result.run.output}`
  )
}
