import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PackedPackage } from './pack.js'
import { describeRun, run } from './run.js'
import { lockedVersion, type PublishedName } from './workspace.js'

/** The fixtures: one folder per app, plus files every app gets. */
const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url))

export interface FreshAppSpec {
  /** The fixture folder under fixtures/ (sources and tsconfig files). */
  fixture: string
  /** Our packages the app installs, as a user would name them in package.json. */
  tidesync: PublishedName[]
  /** Third-party packages, installed at the version the repo's package-lock.json has. */
  dependencies: string[]
  devDependencies: string[]
}

/**
 * Environment for the npm run inside the app: without the `npm_*` variables of the `npm test`
 * that started us (package, lifecycle, workspace, prefix), but with the ones that say how to
 * reach a registry (cache, user config, registry, proxies, certificates).
 */
function npmEnv(): NodeJS.ProcessEnv {
  const keep =
    /^npm_config_(cache|userconfig|globalconfig|registry|.*proxy|cafile|ca|cert|key|strict_ssl)$|registry|:/i
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || keep.test(key)),
  )
}

/**
 * Makes an app in `dir` (outside the repo, so nothing resolves from the repo's node_modules)
 * from a fixture, with a package.json that lists the tarballs and the third-party packages,
 * and installs it. Our packages the app does not list (their own dependencies, such as
 * `@tidesync/protocol`) come from the tarballs too, through `overrides`, since they are not on
 * the registry; a package nobody declares is not installed at all, which is what makes a
 * missing dependency declaration show.
 */
export async function createFreshApp(
  dir: string,
  spec: FreshAppSpec,
  packed: Map<PublishedName, PackedPackage>,
): Promise<void> {
  await cp(join(FIXTURES, spec.fixture), dir, { recursive: true })
  await cp(join(FIXTURES, 'shared'), join(dir, 'src'), { recursive: true })
  const tarball = (name: PublishedName) => {
    const pkg = packed.get(name)
    if (!pkg) throw new Error(`${name} was not packed`)
    return `file:${pkg.tarball}`
  }
  const locked = (names: string[]) => Object.fromEntries(names.map((name) => [name, lockedVersion(name)]))
  const dependencies = {
    ...Object.fromEntries(spec.tidesync.map((name) => [name, tarball(name)])),
    ...locked(spec.dependencies),
  }
  // A direct dependency can only be overridden by a reference to itself (`$name`).
  const overrides = Object.fromEntries(
    [...packed.keys()].map((name) => [name, spec.tidesync.includes(name) ? `$${name}` : tarball(name)]),
  )
  const manifest = {
    name: spec.fixture,
    private: true,
    type: 'module',
    dependencies,
    devDependencies: locked(spec.devDependencies),
    overrides,
  }
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  // npm's cache holds every package from the repo's `npm ci`, so this rarely needs the network.
  // --ignore-scripts: only types are checked, no native module needs building.
  const install = await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'],
    { cwd: dir, env: npmEnv(), timeoutMs: 240_000 },
  )
  if (install.code !== 0)
    throw new Error(`npm install of the ${spec.fixture} failed. ${describeRun(install, dir)}`)
}
