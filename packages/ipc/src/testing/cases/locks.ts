import { AFTER_SHORT_TTL_MS, assert, assertMissing, group, rejectsWith, SHORT_TTL, sleep } from './helpers.js'

export const lockCases = group('locks', {
  'only one instance holds a lock; the holder unlocks it': async ({ ipc, other, key }) => {
    assert.equal(await ipc.lock(key(), 10), true)
    assert.equal(await other.lock(key(), 10), false)
    assert.equal(await ipc.lock(key(), 10), false, 'a held lock cannot be taken again, even by its holder')
    assert.equal(await ipc.unlock(key()), true)
    assert.equal(await other.lock(key(), 10), true)
    assert.equal(await other.unlock(key()), true)
  },

  'a non-holder’s unlock returns false and changes nothing': async ({ ipc, other, key }) => {
    assert.equal(await ipc.lock(key(), 10), true)
    assert.equal(await other.unlock(key()), false)
    assert.equal(await other.lock(key(), 10), false, 'still held by the first instance')
    assert.equal(await other.unlock(key('never-locked')), false)
    assert.equal(await ipc.unlock(key()), true)
    assert.equal(await ipc.unlock(key()), false, 'a second unlock finds nothing to release')
  },

  'the TTL frees a lock whose holder never unlocks; the old holder cannot then release it': async ({
    ipc,
    other,
    key,
  }) => {
    assert.equal(await ipc.lock(key(), SHORT_TTL), true)
    await sleep(AFTER_SHORT_TTL_MS)
    assert.equal(await other.lock(key(), 10), true)
    assert.equal(await ipc.unlock(key()), false)
    assert.equal(await ipc.lock(key(), 10), false, 'the new holder still holds it')
    assert.equal(await other.unlock(key()), true)
  },

  'extendLock renews a held lock; a non-holder cannot extend': async ({ ipc, other, key }) => {
    assert.equal(await ipc.lock(key(), SHORT_TTL), true)
    assert.equal(await other.extendLock(key(), 10), false)
    assert.equal(await ipc.extendLock(key(), 10), true)
    await sleep(AFTER_SHORT_TTL_MS)
    assert.equal(await other.lock(key(), 10), false, 'the extended lock is still held')
    assert.equal(await ipc.unlock(key()), true)
    assert.equal(await ipc.extendLock(key(), 10), false, 'nothing to extend after unlock')
  },

  'locks live in their own namespace': async ({ ipc, key }) => {
    await ipc.set(key(), 'data')
    assert.equal(await ipc.lock(key(), 10), true, 'a data key does not block the lock')
    assert.equal(await ipc.get(key()), 'data')
    assert.equal(await ipc.lock(key('only-lock'), 10), true)
    await assertMissing(ipc, key('only-lock'))
    assert.deepStrictEqual(await ipc.keys(key('')), [key()])
    assert.deepStrictEqual(
      (await ipc.dump(key(''))).map((entry) => entry.key),
      [key()],
    )
    assert.equal(await ipc.del(key('only-lock')), 0)
    assert.equal(await ipc.lock(key('only-lock'), 10), false, 'del does not release a lock')
    await ipc.unlock(key())
    await ipc.unlock(key('only-lock'))
  },

  'lock refuses bad keys and TTLs and takes nothing': async ({ ipc, other, key }) => {
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', null]) {
      await rejectsWith(() => ipc.lock(key(), ttl as number), 'IPC_INVALID_ARGUMENT')
      await rejectsWith(() => ipc.extendLock(key(), ttl as number), 'IPC_INVALID_ARGUMENT')
    }
    await rejectsWith(() => ipc.lock('', 10), 'IPC_INVALID_KEY')
    await rejectsWith(() => ipc.unlock(5 as never), 'IPC_INVALID_KEY')
    assert.equal(await other.lock(key(), 10), true, 'nothing was locked by the bad calls')
    await other.unlock(key())
  },

  'withLock runs fn under the lock, returns its value and releases': async ({ ipc, other, key }) => {
    const result = await ipc.withLock(key(), 10, async () => {
      assert.equal(await other.lock(key(), 10), false, 'held while fn runs')
      return { done: true }
    })
    assert.deepStrictEqual(result, { done: true })
    assert.equal(await other.lock(key(), 10), true, 'released afterwards')
    await other.unlock(key())
  },

  'withLock releases the lock when fn throws, and rethrows': async ({ ipc, other, key }) => {
    const boom = new Error('boom')
    await assert.rejects(
      ipc.withLock(key(), 10, () => {
        throw boom
      }),
      (error) => error === boom,
    )
    await assert.rejects(
      ipc.withLock(key(), 10, async () => Promise.reject(boom)),
      (error) => error === boom,
    )
    assert.equal(await other.lock(key(), 10), true)
    await other.unlock(key())
  },

  'withLock waits for the holder and fails with IPC_LOCK_TIMEOUT past waitMs': async ({
    ipc,
    other,
    key,
  }) => {
    assert.equal(await other.lock(key(), 10), true)
    const started = Date.now()
    await rejectsWith(
      () => ipc.withLock(key(), 10, () => 'never', { waitMs: 120, retryDelayMs: 10 }),
      'IPC_LOCK_TIMEOUT',
    )
    assert.ok(Date.now() - started >= 100, 'it kept trying for about waitMs')
    setTimeout(() => void other.unlock(key()), 100)
    const value = await ipc.withLock(key(), 10, () => 'got it', { waitMs: 5000, retryDelayMs: 10 })
    assert.equal(value, 'got it')
    assert.equal(await other.lock(key(), 10), true, 'released after the wait')
    await other.unlock(key())
  },

  'withLock keeps extending the lock while fn runs longer than the TTL': async ({ ipc, other, key }) => {
    let stolen = false
    await ipc.withLock(key(), SHORT_TTL, async () => {
      for (let i = 0; i < 5; i++) {
        await sleep(80)
        if (await other.lock(key(), 10)) stolen = true
      }
    })
    assert.equal(stolen, false, 'nobody else took the lock during fn (400 ms > 150 ms TTL)')
    assert.equal(await other.lock(key(), 10), true)
    await other.unlock(key())
  },

  'withLock serialises concurrent callers of one instance': async ({ ipc, key }) => {
    let inside = 0
    let maxInside = 0
    await Promise.all(
      Array.from({ length: 8 }, () =>
        ipc.withLock(
          key(),
          10,
          async () => {
            maxInside = Math.max(maxInside, ++inside)
            await sleep(5)
            inside--
          },
          { retryDelayMs: 2 },
        ),
      ),
    )
    assert.equal(maxInside, 1)
  },

  'withLock refuses a bad fn or options before taking the lock': async ({ ipc, other, key }) => {
    await rejectsWith(() => ipc.withLock(key(), 10, 'nope' as never), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.withLock(key(), 0, () => 1), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.withLock(key(), 10, () => 1, { waitMs: -1 }), 'IPC_INVALID_ARGUMENT')
    assert.equal(await other.lock(key(), 10), true)
    await other.unlock(key())
  },
})
