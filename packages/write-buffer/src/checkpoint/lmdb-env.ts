import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import { WriteBufferError } from '../errors.js'

/** The files of a checkpoint directory: checkpoints, and the journal (durability 'journal'). */
export type EnvFile = 'write-buffer.mdb' | 'journal.mdb'

/**
 * How commits reach the disk.
 * - 'commit-flushed': LMDB's default: a write's promise resolves once it is flushed to disk.
 * - 'commit-only': a write's promise resolves once LMDB committed it to the OS (the file's pages
 *   are written; a killed process loses nothing), without waiting for the disk flush; the owner
 *   flushes (`syncEnv`) on its own schedule. Why: a disk flush costs ~0.5-5 ms, and with group
 *   commit the journal's throughput is (concurrent callers / flush latency): flushing per commit
 *   made journal mode ~10x slower than checkpoint mode.
 */
export type EnvSync = 'commit-flushed' | 'commit-only'

/**
 * One LMDB environment per file and process, shared by every buffer that uses it (LMDB allows
 * one open environment per file per process) and closed with its last user. Several processes
 * may open the same file: LMDB serialises their writes. They must open it with the same sync
 * mode (LMDB refuses a mismatch while the file is open elsewhere).
 */
const envs = new Map<string, { root: RootDatabase; users: number; sync: EnvSync }>()

export function openEnv(
  directory: string,
  file: EnvFile = 'write-buffer.mdb',
  sync: EnvSync = 'commit-flushed',
): RootDatabase {
  const path = join(resolve(directory), file)
  const existing = envs.get(path)
  if (existing) {
    if (existing.sync !== sync) throw mismatch(path)
    existing.users++
    return existing.root
  }
  mkdirSync(resolve(directory), { recursive: true })
  let root: RootDatabase
  try {
    root = open({ path, compression: false, maxDbs: 8, ...(sync === 'commit-only' ? { noSync: true } : {}) })
  } catch (error) {
    if (/noSync|overlappingSync/.test(String((error as Error)?.message))) throw mismatch(path, error)
    throw error
  }
  envs.set(path, { root, users: 1, sync })
  return root
}

export async function releaseEnv(directory: string, file: EnvFile = 'write-buffer.mdb'): Promise<void> {
  const path = join(resolve(directory), file)
  const entry = envs.get(path)
  if (!entry) return
  entry.users--
  if (entry.users > 0) return
  envs.delete(path)
  if (entry.sync === 'commit-only') await syncEnv(entry.root).catch(() => undefined)
  await entry.root.close()
}

/** Flushes everything committed so far to disk (fsync), on LMDB's worker thread. */
export function syncEnv(root: RootDatabase): Promise<void> {
  return new Promise((resolve, reject) => {
    ;(root as unknown as { sync(callback: (error?: unknown) => void): void }).sync((error) =>
      error ? reject(error) : resolve(),
    )
  })
}

function mismatch(path: string, cause?: unknown): WriteBufferError {
  return new WriteBufferError(
    'WB_INVALID_OPTION',
    `${path} is open with another journalFsync setting: every buffer (and process) that shares a checkpointPath must use the same one.`,
    { cause },
  )
}
