/**
 * The LMDB side of durability, on its own (no database, no IPC store).
 */
import type { IpcEntry } from '@tidesync/ipc'
import { afterEach, describe, expect, test } from 'vitest'
import { CheckpointStore } from '../checkpoint/checkpoint.js'
import { openEnv, releaseEnv } from '../checkpoint/lmdb-env.js'
import { WriteBufferError } from '../errors.js'
import { tempDir } from './env.js'

const dirs: (() => void)[] = []
const dir = () => {
  const made = tempDir('wb-lmdb-')
  dirs.push(made.remove)
  return made.path
}
afterEach(() => {
  for (const remove of dirs.splice(0)) remove()
})

describe('LMDB environments', () => {
  test('odac: a checkpoint is committed and flushed to disk off the event loop (odac wrote synchronously on the IPC primary)', async () => {
    const path = dir()
    const store = new CheckpointStore(openEnv(path), 'wb:')
    const entries: IpcEntry[] = Array.from({ length: 2000 }, (_, i) => ({
      key: `wb:F:t:b:inc${i}`,
      type: 'hash',
      value: { [`["views",${i}]`]: i },
    }))
    let written = false
    const writing = store.write({ generation: 1, epoch: 'e', createdAt: 0, entries }).then((ok) => {
      written = ok
    })
    // A synchronous write would be done once the pending microtasks ran, before any timer;
    // LMDB's writer thread answers in a later turn of the event loop.
    for (let i = 0; i < 10; i++) await null
    let turns = 0
    while (!written) {
      await new Promise((resolve) => setImmediate(resolve))
      turns++
    }
    await writing
    expect(turns).toBeGreaterThan(0)
    expect(store.read()?.entries).toHaveLength(2000)
    await releaseEnv(path)
  })

  test('generations only grow within one store life; a newer life always wins', async () => {
    const path = dir()
    const store = new CheckpointStore(openEnv(path), 'wb:')
    expect(await store.write({ generation: 5, epoch: 'a', createdAt: 0, entries: [] })).toBe(true)
    expect(await store.write({ generation: 4, epoch: 'a', createdAt: 0, entries: [] })).toBe(false)
    expect(await store.write({ generation: 1, epoch: 'b', createdAt: 0, entries: [] })).toBe(true)
    expect(store.read()).toMatchObject({ generation: 1, epoch: 'b' })
    await releaseEnv(path)
  })

  test('one file, one sync mode: buffers that disagree on journalFsync are refused', async () => {
    const path = dir()
    openEnv(path, 'journal.mdb', 'commit-only')
    expect(() => openEnv(path, 'journal.mdb', 'commit-flushed')).toThrow(WriteBufferError)
    try {
      openEnv(path, 'journal.mdb', 'commit-flushed')
    } catch (error) {
      expect((error as WriteBufferError).code).toBe('WB_INVALID_OPTION')
    }
    await releaseEnv(path, 'journal.mdb')
  })
})
