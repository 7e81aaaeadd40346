// The published packages as a user gets them: npm pack each one, install the tarballs into two
// fresh apps outside the repo, and type-check the apps with skipLibCheck off.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { missingEntryPoints, undeclaredImports } from './declared-imports.js'
import { createFreshApp, type FreshAppSpec } from './fresh-app.js'
import { type PackedPackage, packWorkspaces } from './pack.js'
import { describeTypecheck, typecheck, typecheckPassed } from './typecheck.js'
import { ensureBuilt, PUBLISHED_NAMES, type PublishedName } from './workspace.js'

/** A browser app: only the client, with the peers its README asks for. */
const CLIENT_APP: FreshAppSpec = {
  fixture: 'client-app',
  tidesync: ['@tidesync/client'],
  dependencies: ['vue', '@vueuse/core', 'drizzle-orm'],
  devDependencies: ['typescript'],
}

/** A Node server: the server on PGlite and socket.io, with its IPC and write buffer. */
const SERVER_APP: FreshAppSpec = {
  fixture: 'server-app',
  tidesync: ['@tidesync/server', '@tidesync/ipc', '@tidesync/write-buffer'],
  dependencies: ['socket.io', '@electric-sql/pglite', 'drizzle-orm'],
  devDependencies: ['typescript', '@types/node'],
}

let work = ''
let packed = new Map<PublishedName, PackedPackage>()

beforeAll(async () => {
  await ensureBuilt()
  work = await mkdtemp(join(tmpdir(), 'tidesync-packaging-'))
  packed = await packWorkspaces(PUBLISHED_NAMES, join(work, 'tarballs'))
}, 360_000)

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true, maxRetries: 5 })
})

/** Each app is installed once, on first use, while the other installs and type-checks. */
const installs = new Map<FreshAppSpec, Promise<string>>()
function installed(spec: FreshAppSpec): Promise<string> {
  let install = installs.get(spec)
  if (!install) {
    const dir = join(work, spec.fixture)
    install = mkdir(dir).then(() => createFreshApp(dir, spec, packed).then(() => dir))
    installs.set(spec, install)
  }
  return install
}

describe.concurrent('the published packages, installed from their tarballs', () => {
  it('every file a package.json points at is in its tarball', ({ expect }) => {
    const missing = [...packed.values()].flatMap((pkg) =>
      missingEntryPoints(pkg).map((target) => `${pkg.name}: ${target}`),
    )
    expect(missing, 'package.json targets missing from the tarball').toEqual([])
  })

  it('no packed .d.ts imports a package its package.json does not declare', async ({ expect }) => {
    const undeclared = []
    for (const pkg of packed.values())
      for (const found of await undeclaredImports(pkg))
        undeclared.push(
          `${pkg.name}/${found.file} imports '${found.specifier}', but ${found.packageName} is ` +
            `${found.declaredIn ? `only in ${found.declaredIn}` : 'not declared'}`,
        )
    expect(undeclared, 'declare these as dependencies or peerDependencies').toEqual([])
  })

  it('a client-only Vue app type-checks (moduleResolution Bundler)', async ({ expect }) => {
    const dir = await installed(CLIENT_APP)
    const result = await typecheck(dir, 'tsconfig.json')
    expect(typecheckPassed(result), describeTypecheck(result, dir)).toBe(true)
  }, 300_000)

  it('the same app type-checks with moduleResolution NodeNext', async ({ expect }) => {
    const dir = await installed(CLIENT_APP)
    const result = await typecheck(dir, 'tsconfig.nodenext.json')
    expect(typecheckPassed(result), describeTypecheck(result, dir)).toBe(true)
  }, 300_000)

  it('a server app (PGlite, socket.io, IPC, write buffer) type-checks', async ({ expect }) => {
    const dir = await installed(SERVER_APP)
    const result = await typecheck(dir, 'tsconfig.json')
    expect(typecheckPassed(result), describeTypecheck(result, dir)).toBe(true)
  }, 300_000)
})
