import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeRun, run } from './run.js'

/** The monorepo's root directory. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/** The packages we publish, leaf first, with their workspace folders. */
export const PUBLISHED = {
  '@tidesync/protocol': 'packages/protocol',
  '@tidesync/ipc': 'packages/ipc',
  '@tidesync/write-buffer': 'packages/write-buffer',
  '@tidesync/server': 'packages/server',
  '@tidesync/client': 'packages/client',
} as const

export type PublishedName = keyof typeof PUBLISHED

export const PUBLISHED_NAMES = Object.keys(PUBLISHED) as PublishedName[]

/** The command that builds every published package's dist/ (turbo caches unchanged ones). */
export const BUILD_ARGS = [
  'turbo',
  'run',
  'build',
  '--filter=@tidesync/packaging^...',
  '--output-logs=errors-only',
]

/**
 * Makes sure every published package has a current dist/. Under `npm test` turbo already ran
 * `^build` before this package's `test` task (it sets TURBO_HASH for the task), so nothing is
 * run; a standalone `vitest run` builds through turbo, which replays unchanged packages from its
 * cache in a few seconds, so the tarballs never hold a stale build.
 */
export async function ensureBuilt(): Promise<void> {
  if (!process.env.TURBO_HASH) {
    const result = await run('npx', BUILD_ARGS, { cwd: REPO_ROOT, timeoutMs: 300_000 })
    if (result.code !== 0)
      throw new Error(`Building the published packages failed. ${describeRun(result, REPO_ROOT)}`)
  }
  const missing = PUBLISHED_NAMES.filter((name) => !existsSync(join(REPO_ROOT, PUBLISHED[name], 'dist')))
  if (missing.length > 0)
    throw new Error(
      `No dist/ in ${missing.join(', ')}: run \`npx ${BUILD_ARGS.slice(0, 4).join(' ')}\` in ${REPO_ROOT}`,
    )
}

interface LockEntry {
  version?: string
}

let lockPackages: Record<string, LockEntry> | undefined

/**
 * The version of a third-party package the repo's package-lock.json installs (top level), so
 * the fresh apps type-check against what the repo's own tests use.
 */
export function lockedVersion(name: string): string {
  lockPackages ??= (
    JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, LockEntry>
    }
  ).packages
  const version = lockPackages[`node_modules/${name}`]?.version
  if (!version) throw new Error(`${name} is not installed at the top level of package-lock.json`)
  return version
}
