import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describeRun, run } from './run.js'
import { PUBLISHED, type PublishedName, REPO_ROOT } from './workspace.js'

/** The parts of a package.json these checks read. */
export interface Manifest {
  name: string
  version: string
  main?: string
  types?: string
  exports?: unknown
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
}

/** One package as npm would publish it. */
export interface PackedPackage {
  name: PublishedName
  /** The .tgz `npm pack` wrote. */
  tarball: string
  /** The tarball unpacked: the package's root (its `package/` folder). */
  root: string
  /** The package.json inside the tarball. */
  manifest: Manifest
  /** Every file in the tarball, relative to `root`. */
  files: string[]
}

interface NpmPackEntry {
  name: string
  filename: string
  files: { path: string }[]
}

/**
 * `npm pack`s the given workspaces (one npm call; nothing is published) into `destination`,
 * and unpacks each tarball next to it, so the checks read exactly what a user downloads.
 */
export async function packWorkspaces(
  names: readonly PublishedName[],
  destination: string,
): Promise<Map<PublishedName, PackedPackage>> {
  await mkdir(destination, { recursive: true })
  const workspaces = names.flatMap((name) => ['--workspace', PUBLISHED[name]])
  // --ignore-scripts: dist/ is built by turbo beforehand; no lifecycle output mixes into --json.
  const result = await run(
    'npm',
    ['pack', ...workspaces, '--pack-destination', destination, '--json', '--ignore-scripts'],
    { cwd: REPO_ROOT, timeoutMs: 120_000 },
  )
  if (result.code !== 0) throw new Error(`npm pack failed. ${describeRun(result, REPO_ROOT)}`)
  const entries = JSON.parse(result.stdout) as NpmPackEntry[]
  const packed = new Map<PublishedName, PackedPackage>()
  for (const entry of entries) {
    const name = entry.name as PublishedName
    const tarball = join(destination, entry.filename)
    const unpacked = join(destination, entry.filename.replace(/\.tgz$/, ''))
    await mkdir(unpacked, { recursive: true })
    const untar = await run('tar', ['-xzf', tarball, '-C', unpacked], { cwd: destination, timeoutMs: 60_000 })
    if (untar.code !== 0) throw new Error(`Unpacking ${tarball} failed. ${describeRun(untar, destination)}`)
    const root = join(unpacked, 'package')
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest
    packed.set(name, { name, tarball, root, manifest, files: entry.files.map((file) => file.path) })
  }
  const missing = names.filter((name) => !packed.has(name))
  if (missing.length > 0)
    throw new Error(`npm pack made no tarball for ${missing.join(', ')}:\n${result.output}`)
  return packed
}
