import { describe, expect, it } from 'vitest'
import { KeyedMutex } from '../socket/keyed-mutex.js'
import { PushSerializer } from '../socket/push-serializer.js'
import { type RequestGauge, RequestLimiter, resolveRequestLimits } from '../socket/request-limiter.js'

/** A task that runs until the test opens it. */
function gated(log: string[], name: string) {
  let open!: () => void
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  return {
    task: async () => {
      log.push(`start ${name}`)
      await gate
      log.push(`end ${name}`)
    },
    open: () => open(),
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('RequestLimiter', () => {
  it('runs at most maxConcurrent, queues maxQueued in order, refuses the rest', async () => {
    const gauge: RequestGauge = { running: 0, queued: 0 }
    const limiter = new RequestLimiter({ maxConcurrent: 2, maxQueued: 2 }, gauge)
    const log: string[] = []
    const tasks = ['a', 'b', 'c', 'd', 'e'].map((name) => gated(log, name))
    expect(tasks.map((t) => limiter.submit(t.task))).toEqual([true, true, true, true, false])
    expect(log).toEqual(['start a', 'start b'])
    expect(gauge).toEqual({ running: 2, queued: 2 })
    tasks[1]!.open()
    await tick()
    expect(log).toEqual(['start a', 'start b', 'end b', 'start c'])
    expect(gauge).toEqual({ running: 2, queued: 1 })
    for (const t of tasks) t.open()
    await tick()
    expect(log.filter((l) => l.startsWith('start'))).toEqual(['start a', 'start b', 'start c', 'start d'])
    expect(gauge).toEqual({ running: 0, queued: 0 })
  })

  it('close drops what waits; running tasks finish; later submits are refused', async () => {
    const gauge: RequestGauge = { running: 0, queued: 0 }
    const limiter = new RequestLimiter({ maxConcurrent: 1, maxQueued: 5 }, gauge)
    const log: string[] = []
    const [a, b, c] = ['a', 'b', 'c'].map((name) => gated(log, name))
    limiter.submit(a!.task)
    limiter.submit(b!.task)
    limiter.submit(c!.task)
    limiter.close()
    limiter.close()
    expect(gauge).toEqual({ running: 1, queued: 0 })
    expect(limiter.submit(async () => {})).toBe(false)
    a!.open()
    b!.open()
    c!.open()
    await tick()
    expect(log).toEqual(['start a', 'end a'])
    expect(gauge).toEqual({ running: 0, queued: 0 })
  })

  it('frees the slot of a task that throws or rejects', async () => {
    const gauge: RequestGauge = { running: 0, queued: 0 }
    const limiter = new RequestLimiter({ maxConcurrent: 1, maxQueued: 2 }, gauge)
    const ran: string[] = []
    limiter.submit(() => {
      throw new Error('sync')
    })
    limiter.submit(async () => {
      throw new Error('async')
    })
    limiter.submit(async () => {
      ran.push('third')
    })
    await tick()
    expect(ran).toEqual(['third'])
    expect(gauge).toEqual({ running: 0, queued: 0 })
  })

  it('resolves the defaults', () => {
    expect(resolveRequestLimits({})).toEqual({ maxConcurrent: 8, maxQueued: 64 })
    expect(
      resolveRequestLimits({ maxConcurrentRequestsPerSocket: 1, maxQueuedRequestsPerSocket: 0 }),
    ).toEqual({
      maxConcurrent: 1,
      maxQueued: 0,
    })
  })
})

describe('KeyedMutex and PushSerializer', () => {
  it('serves one key first come first served, other keys independently, and forgets released keys', async () => {
    const mutex = new KeyedMutex()
    const order: string[] = []
    const first = await mutex.acquire('k')
    const second = mutex.acquire('k').then((release) => {
      order.push('second')
      return release
    })
    const third = mutex.acquire('k').then((release) => {
      order.push('third')
      release()
    })
    const other = await mutex.acquire('other')
    order.push('other')
    await tick()
    expect(order).toEqual(['other'])
    first()
    first() // idempotent: does not let the third in early
    const releaseSecond = await second
    await tick()
    expect(order).toEqual(['other', 'second'])
    releaseSecond()
    await third
    other()
    expect(order).toEqual(['other', 'second', 'third'])
    expect(mutex.size).toBe(0)
  })

  it('serialises pushes per socket and per clientId, never deadlocking', async () => {
    const pushes = new PushSerializer()
    const order: string[] = []
    const run = async (socket: string, clientId: unknown, name: string) => {
      const release = await pushes.acquire(socket, { clientId, changes: [] })
      order.push(`start ${name}`)
      await tick()
      order.push(`end ${name}`)
      release()
    }
    await Promise.all([
      run('s1', 'c1', 'a'), // s1 and c1
      run('s1', 'c2', 'b'), // waits for a (same socket)
      run('s2', 'c1', 'c'), // waits for a (same clientId)
      run('s3', 'c3', 'd'), // independent
      run('s2', 42, 'e'), // no usable clientId: its socket only, after c
    ])
    const span = (name: string) => [order.indexOf(`start ${name}`), order.indexOf(`end ${name}`)] as const
    const disjoint = (x: string, y: string) => span(x)[1] < span(y)[0] || span(y)[1] < span(x)[0]
    expect(disjoint('a', 'b')).toBe(true)
    expect(disjoint('a', 'c')).toBe(true)
    expect(disjoint('c', 'e')).toBe(true)
    expect(span('a')[1]).toBeLessThan(span('b')[0])
    expect(span('c')[1]).toBeLessThan(span('e')[0])
    expect(order.indexOf('start d')).toBe(1)
    expect(pushes.size).toBe(0)
  })
})
