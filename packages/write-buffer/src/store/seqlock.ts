import type { Ipc } from '@tidesync/ipc'

/**
 * A sequence lock in the IPC store, per table. A flush makes it odd while it moves data between
 * pending and in-flight keys and while it commits (from the last statement of its transaction
 * until the in-flight keys are deleted), then even again. `get()` reads pending state and the
 * database value between two even, equal readings, so it never counts a delta twice (in flight
 * and already committed) nor misses one (moved between two reads).
 *
 * Writers hold the table's flush lock, so there is one writer at a time. A writer that crashed
 * while odd leaves it odd: the next writer makes it even first.
 */
export async function beginWrite(ipc: Ipc, key: string): Promise<void> {
  const value = await ipc.incrBy(key, 1)
  if (value % 2 === 0) await ipc.incrBy(key, 1)
}

export async function endWrite(ipc: Ipc, key: string): Promise<void> {
  const value = await ipc.incrBy(key, 1)
  if (value % 2 === 1) await ipc.incrBy(key, 1)
}

/** Runs `fn` as a writer (odd), always ending even. */
export async function asWriter<T>(ipc: Ipc, key: string, fn: () => Promise<T>): Promise<T> {
  await beginWrite(ipc, key)
  try {
    return await fn()
  } finally {
    await endWrite(ipc, key)
  }
}

/** The current version (0 when never written). */
export async function readVersion(ipc: Ipc, key: string): Promise<number> {
  return Number((await ipc.get<number>(key)) ?? 0)
}
