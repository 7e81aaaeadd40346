import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'

/**
 * Floors: each package's source as ordered groups of folders and files, lowest first, where an
 * import may only run to the same floor or a lower one. A file finds its floor by its longest
 * matching member, so a file member (`write/pending-writes.ts`) beats its folder (`write/`).
 * Tests are not source: `__tests__/` folders and `*.test.ts` files are left out.
 */
export interface Floor {
  /** Shown in messages. */
  name: string
  /** Folders (ending in `/`) and files under the package's `src/`. */
  members: readonly string[]
}

export interface PackageFloors {
  /** The package name (`@tidesync/server`). */
  name: string
  /** Its folder, relative to the repository root. */
  dir: string
  /** The workspace packages its source may import (any other `@tidesync/*` import is an arrow against the package order). */
  mayImport: readonly string[]
  /** Lowest first. */
  floors: readonly Floor[]
}

/** An import from a file to a file on a higher floor of the same package. */
export interface BackArrow {
  /** Both relative to `src/`, with `/` separators. */
  from: string
  to: string
  fromFloor: string
  toFloor: string
}

export interface FloorReport {
  package: string
  /** Source files checked. */
  files: number
  backArrows: BackArrow[]
  /** `@tidesync/*` imports the package order does not allow. */
  packageArrows: Array<{ from: string; specifier: string }>
  /** Source files no floor holds: every file must stand on one. */
  unplaced: string[]
  /** Members that match no file (a moved or deleted file): keep the declaration true. */
  emptyMembers: string[]
  /** Relative imports that resolve to no file. */
  unresolved: Array<{ from: string; specifier: string }>
}

/**
 * The repository's packages and their floors. The package order: protocol and ipc import no
 * workspace package; write-buffer stands on them; the server on all three; the client on the
 * protocol only (never on the server).
 */
export const PACKAGE_FLOORS: readonly PackageFloors[] = [
  {
    name: '@tidesync/protocol',
    dir: 'packages/protocol',
    mayImport: [],
    floors: [
      { name: 'records', members: ['records.ts', 'errors.ts', 'logger.ts'] },
      { name: 'clock and where', members: ['hlc/', 'where/', 'live-message.ts'] },
      { name: 'messages', members: ['messages.ts'] },
      { name: 'events', members: ['events.ts'] },
      { name: 'entry', members: ['index.ts'] },
    ],
  },
  {
    name: '@tidesync/ipc',
    dir: 'packages/ipc',
    mayImport: [],
    floors: [
      { name: 'types', members: ['types.ts', 'errors.ts'] },
      {
        name: 'helpers',
        members: ['validate.ts', 'local-subscriptions.ts', 'logger.ts', 'safe-assign.ts'],
      },
      { name: 'commands', members: ['commands.ts', 'owned-locks.ts'] },
      { name: 'base', members: ['base-ipc.ts'] },
      { name: 'memory driver', members: ['drivers/memory/'] },
      // The cluster primary keeps its store in the memory driver's store.
      { name: 'cluster and redis drivers', members: ['drivers/cluster/', 'drivers/redis/'] },
      // The conformance suite ships as `@tidesync/ipc/testing`: an entry point like index.ts.
      { name: 'entry', members: ['index.ts', 'testing/'] },
    ],
  },
  {
    name: '@tidesync/write-buffer',
    dir: 'packages/write-buffer',
    mayImport: ['@tidesync/ipc', '@tidesync/protocol'],
    floors: [
      { name: 'base', members: ['errors.ts', 'types.ts', 'logger.ts'] },
      // How buffered state is laid out in the IPC store (keys, values, the seqlock both writers
      // and readers use).
      { name: 'store', members: ['store/'] },
      { name: 'db', members: ['db/'] },
      { name: 'flush', members: ['flush/'] },
      { name: 'checkpoint', members: ['checkpoint/'] },
      // Readers of buffered state: nothing that writes should need them.
      { name: 'read', members: ['read/'] },
      { name: 'lifecycle', members: ['lifecycle/'] },
      { name: 'tables', members: ['tables/'] },
      { name: 'buffer', members: ['write-buffer.ts'] },
      { name: 'entry', members: ['index.ts'] },
    ],
  },
  {
    name: '@tidesync/server',
    dir: 'packages/server',
    mayImport: ['@tidesync/protocol', '@tidesync/ipc', '@tidesync/write-buffer'],
    floors: [
      { name: 'base', members: ['errors.ts', 'logger.ts', 'types.ts', 'protocol.ts'] },
      // What the data is: tables, models, column values, filters, the record's wire form. No I/O.
      { name: 'schema and model', members: ['schema/', 'model/', 'validation/'] },
      { name: 'db', members: ['db/'] },
      // The write-buffer seam ("direct vs buffered"; exactly-once delivery lives in
      // @tidesync/write-buffer's `deferred` API): reads overlay its pending values and writes
      // defer to it, so it stands under both.
      { name: 'pending writes', members: ['write/pending-writes.ts', 'write/write-buffer-writes.ts'] },
      { name: 'core', members: ['core.ts'] },
      { name: 'read, write, live', members: ['read/', 'write/', 'live/'] },
      { name: 'handlers', members: ['handlers/'] },
      {
        name: 'service and socket',
        members: [
          'socket/',
          'auth/',
          'options.ts',
          'capture-statements.ts',
          'tidesync.ts',
          'sync-server.ts',
          'index.ts',
        ],
      },
    ],
  },
  {
    name: '@tidesync/client',
    dir: 'packages/client',
    mayImport: ['@tidesync/protocol'],
    floors: [
      { name: 'base', members: ['core/errors.ts', 'core/types.ts', 'core/env.ts', 'core/status.ts'] },
      { name: 'schema', members: ['core/schema/'] },
      { name: 'db', members: ['core/db/', 'core/where.ts'] },
      {
        name: 'store',
        members: ['core/context.ts', 'core/outbox.ts', 'core/merge.ts', 'core/live/'],
      },
      {
        name: 'writes',
        members: [
          'core/apply-server.ts',
          'core/apply-remote.ts',
          'core/local-writes.ts',
          'core/integrity.ts',
        ],
      },
      { name: 'sync', members: ['core/sync/'] },
      { name: 'collection', members: ['core/collection.ts'] },
      { name: 'client', members: ['core/client.ts', 'core/index.ts'] },
      { name: 'vue', members: ['vue/'] },
      { name: 'entry', members: ['index.ts'] },
    ],
  },
]

/** Test files and folders: not source, not checked. */
function isTest(path: string): boolean {
  return path.split('/').includes('__tests__') || path.endsWith('.test.ts')
}

/** Every non-test `.ts` file under `srcDir` (not `.d.ts`), relative, with `/` separators. */
export function sourceFiles(srcDir: string): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path)
        continue
      }
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue
      const rel = relative(srcDir, path).split(sep).join('/')
      if (!isTest(rel)) files.push(rel)
    }
  }
  walk(srcDir)
  return files.sort()
}

/**
 * The module specifiers a file imports: `import`/`export ... from` (type-only too: a type is
 * still an arrow), `import()` and `require()`. TypeScript's own pre-parser, so imports in
 * comments and strings are not counted.
 */
export function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((file) => file.fileName)
}

/** A relative specifier as a file under `srcDir` (NodeNext: `./x.js` is `./x.ts`), or undefined. */
function resolveRelative(srcDir: string, from: string, specifier: string): string | undefined {
  const base = resolve(srcDir, dirname(from), specifier)
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), base]
  const found = candidates.find((path) => existsSync(path) && statSync(path).isFile())
  return found === undefined ? undefined : relative(srcDir, found).split(sep).join('/')
}

/** The floor index of a file: its longest matching member wins; -1 when none matches. */
function floorIndex(floors: readonly Floor[], file: string): number {
  let best = -1
  let bestLength = -1
  floors.forEach((floor, index) => {
    for (const member of floor.members) {
      const matches = member.endsWith('/') ? file.startsWith(member) : file === member
      if (matches && member.length > bestLength) {
        best = index
        bestLength = member.length
      }
    }
  })
  return best
}

/** `@scope/name/sub` -> `@scope/name`. */
function packageOf(specifier: string): string {
  return specifier.split('/').slice(0, 2).join('/')
}

/** Checks one package's source against its floors and the package order. */
export function checkFloors(root: string, plan: PackageFloors): FloorReport {
  const srcDir = join(root, plan.dir, 'src')
  const files = sourceFiles(srcDir)
  const members = plan.floors.flatMap((floor) => floor.members)
  const twice = members.filter((member, i) => members.indexOf(member) !== i)
  if (twice.length > 0) throw new Error(`${plan.name}: members on two floors: ${twice.join(', ')}`)
  const report: FloorReport = {
    package: plan.name,
    files: files.length,
    backArrows: [],
    packageArrows: [],
    unplaced: files.filter((file) => floorIndex(plan.floors, file) < 0),
    emptyMembers: members.filter((member) =>
      member.endsWith('/') ? !files.some((file) => file.startsWith(member)) : !files.includes(member),
    ),
    unresolved: [],
  }
  for (const from of files) {
    const fromIndex = floorIndex(plan.floors, from)
    for (const specifier of importsOf(readFileSync(join(srcDir, from), 'utf8'))) {
      if (specifier.startsWith('@tidesync/')) {
        const target = packageOf(specifier)
        if (target !== plan.name && !plan.mayImport.includes(target))
          report.packageArrows.push({ from, specifier })
        continue
      }
      if (!specifier.startsWith('.')) continue
      const to = resolveRelative(srcDir, from, specifier)
      if (to === undefined) {
        report.unresolved.push({ from, specifier })
        continue
      }
      // Outside src (a JSON file, say): not a floor matter.
      if (to.startsWith('../')) continue
      const toIndex = floorIndex(plan.floors, to)
      if (fromIndex >= 0 && toIndex > fromIndex) {
        report.backArrows.push({
          from,
          to,
          fromFloor: plan.floors[fromIndex]!.name,
          toFloor: plan.floors[toIndex]!.name,
        })
      }
    }
  }
  return report
}
