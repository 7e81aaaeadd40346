import { describe, expect, it } from 'vitest'
import { ReadAhead } from '../read/read-ahead.js'

/** A read whose outcome the test decides. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (error: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe('ReadAhead', () => {
  it('hands a page read ahead to the first request only', async () => {
    const ahead = new ReadAhead<string>(() => 0)
    let reads = 0
    ahead.start('k', async () => {
      reads++
      return 'page'
    })
    ahead.start('k', async () => {
      reads++
      return 'again'
    })
    expect(reads).toBe(1)
    expect(await ahead.take('k')).toBe('page')
    expect(ahead.take('k')).toBeUndefined()
    expect(ahead.take('other')).toBeUndefined()
  })

  it('drops a page after ttlMs (injected clock)', async () => {
    let now = 1000
    const ahead = new ReadAhead<string>(() => now, 32, 100)
    ahead.start('old', async () => 'old page')
    now += 60
    ahead.start('young', async () => 'young page')
    now += 40 // 'old' is exactly ttlMs old: still kept
    expect(await ahead.take('old')).toBe('old page')
    ahead.start('old', async () => 'old page 2')
    now += 61 // 'young' is 101 ms old, the new 'old' 61 ms
    expect(ahead.take('young')).toBeUndefined()
    expect(await ahead.take('old')).toBe('old page 2')
  })

  it('holds at most max pages, pushing out the oldest', async () => {
    const ahead = new ReadAhead<number>(() => 0, 3)
    for (let i = 0; i < 5; i++) ahead.start(`k${i}`, async () => i)
    expect(ahead.take('k0')).toBeUndefined()
    expect(ahead.take('k1')).toBeUndefined()
    expect(await Promise.all(['k2', 'k3', 'k4'].map((k) => ahead.take(k)))).toEqual([2, 3, 4])
  })

  it('drops a failed read: the request then reads by itself, and the key can be read ahead again', async () => {
    const ahead = new ReadAhead<string>(() => 0)
    const failing = deferred<string>()
    ahead.start('k', () => failing.promise)
    failing.reject(new Error('connection lost'))
    await settle()
    expect(ahead.take('k')).toBeUndefined()
    let reads = 0
    ahead.start('k', async () => {
      reads++
      return 'retry'
    })
    expect(reads).toBe(1)
    expect(await ahead.take('k')).toBe('retry')
  })

  it('a failed read taken while pending rejects for its taker only, and never drops a later read of the key', async () => {
    const ahead = new ReadAhead<string>(() => 0)
    const failing = deferred<string>()
    ahead.start('k', () => failing.promise)
    const taken = ahead.take('k')!
    // The request that took it moved on; the next answer starts a new read under the same key.
    ahead.start('k', async () => 'fresh')
    failing.reject(new Error('connection lost'))
    await expect(taken).rejects.toThrow('connection lost')
    await settle()
    expect(await ahead.take('k')).toBe('fresh')
  })
})
