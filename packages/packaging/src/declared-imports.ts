import { readFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { join } from 'node:path'
import ts from 'typescript'
import type { PackedPackage } from './pack.js'

/** A package a published .d.ts needs but the package.json does not declare. */
export interface UndeclaredImport {
  /** The .d.ts, relative to the package root. */
  file: string
  /** The specifier as written (`@tidesync/server/protocol`). */
  specifier: string
  /** The package it belongs to (`@tidesync/server`). */
  packageName: string
  /** Where the package.json lists it instead, if anywhere (`devDependencies`). */
  declaredIn: 'devDependencies' | null
}

/** `@scope/name/sub/path` -> `@scope/name`; `name/sub` -> `name`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier)
}

/** The DefinitelyTyped package for `name`: `pg` -> `@types/pg`, `@a/b` -> `@types/a__b`. */
function typesPackageOf(name: string): string {
  return `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`
}

/**
 * Every package the .d.ts files of a packed package import (`import`/`export ... from`,
 * `import('...')` types, `declare module` augmentations, `/// <reference types>`) that its
 * package.json declares neither in `dependencies` nor in `peerDependencies`. A user installs
 * only those, so any other import is a TS2307 in their app (or, with skipLibCheck, silently
 * `any`). Relative imports, Node built-ins and the package itself are fine.
 */
export async function undeclaredImports(pkg: PackedPackage): Promise<UndeclaredImport[]> {
  const { manifest } = pkg
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ])
  const isDeclared = (name: string) => declared.has(name) || declared.has(typesPackageOf(name))
  const found: UndeclaredImport[] = []
  for (const file of pkg.files.filter((path) => /\.d\.[cm]?ts$/.test(path))) {
    const text = await readFile(join(pkg.root, file), 'utf8')
    // The compiler's own pre-scan: it skips comments (JSDoc examples import things too).
    const info = ts.preProcessFile(text, true, true)
    const specifiers = [
      ...info.importedFiles.map((ref) => ref.fileName),
      ...info.typeReferenceDirectives.map((ref) => ref.fileName),
    ]
    for (const specifier of new Set(specifiers)) {
      if (specifier.startsWith('.') || specifier.startsWith('/') || isBuiltin(specifier)) continue
      if (specifier === 'node') continue // `/// <reference types="node" />`: the Node built-ins
      const packageName = packageNameOf(specifier)
      if (isDeclared(packageName)) continue
      const inDev = packageName in (manifest.devDependencies ?? {})
      found.push({ file, specifier, packageName, declaredIn: inDev ? 'devDependencies' : null })
    }
  }
  return found
}

/** The conditions our package.json files use only inside the repo (workspace TypeScript sources). */
const REPO_ONLY_CONDITIONS = new Set(['source'])

/**
 * Every file the package.json points at (`main`, `types`, each `exports` target except the
 * repo-only `source` condition) that is not in the tarball.
 */
export function missingEntryPoints(pkg: PackedPackage): string[] {
  const targets: string[] = []
  const collect = (value: unknown, condition: string | null) => {
    if (condition !== null && REPO_ONLY_CONDITIONS.has(condition)) return
    if (typeof value === 'string') targets.push(value)
    else if (Array.isArray(value)) for (const item of value) collect(item, condition)
    else if (value && typeof value === 'object')
      for (const [key, item] of Object.entries(value)) collect(item, key.startsWith('.') ? null : key)
  }
  collect(pkg.manifest.exports, null)
  if (pkg.manifest.main) targets.push(pkg.manifest.main)
  if (pkg.manifest.types) targets.push(pkg.manifest.types)
  const files = new Set(pkg.files)
  return targets.filter((target) => !target.includes('*') && !files.has(target.replace(/^\.\//, '')))
}
