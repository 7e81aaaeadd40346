import { describe, expect, it } from 'vitest'
import { MIN_PUSH_BATCH, PushPacer } from '../sync/push-pacer.js'

const pacer = (maxBatch = 500, baseTimeoutMs = 15_000, perChangeMs = 20) =>
  new PushPacer({ maxBatch, baseTimeoutMs, perChangeMs })

describe('push pacing', () => {
  it('times a push by its size: the base timeout plus an allowance per change', () => {
    const p = pacer()
    expect(p.timeoutFor(0)).toBe(15_000)
    expect(p.timeoutFor(1)).toBe(15_020)
    expect(p.timeoutFor(500)).toBe(25_000)
    expect(pacer(500, 1000, 0).timeoutFor(500)).toBe(1000)
  })

  it('halves the batch after an answer slower than half its timeout, down to the minimum', () => {
    const p = pacer(500, 1000, 0)
    expect(p.batchSize).toBe(500)
    const sizes: number[] = []
    for (let i = 0; i < 6; i++) {
      p.record(p.batchSize, 501)
      sizes.push(p.batchSize)
    }
    expect(sizes).toEqual([250, 125, 62, 31, MIN_PUSH_BATCH, MIN_PUSH_BATCH])
    // A push that timed out counts as slow (it is recorded with its whole timeout).
    const q = pacer(500, 1000, 0)
    q.record(500, q.timeoutFor(500))
    expect(q.batchSize).toBe(250)
  })

  it('doubles the batch again after full batches answered within a quarter of their timeout', () => {
    const p = pacer(500, 1000, 0)
    for (let i = 0; i < 4; i++) p.record(p.batchSize, 900)
    expect(p.batchSize).toBe(31)
    const sizes: number[] = []
    for (let i = 0; i < 6; i++) {
      p.record(p.batchSize, 100)
      sizes.push(p.batchSize)
    }
    expect(sizes).toEqual([62, 124, 248, 496, 500, 500])
  })

  it('keeps the size between a quarter and a half of the timeout, and after small fast batches', () => {
    const p = pacer(500, 1000, 0)
    p.record(500, 600)
    expect(p.batchSize).toBe(250)
    p.record(250, 400) // between a quarter and a half: stays
    expect(p.batchSize).toBe(250)
    p.record(3, 10) // fast, but a small batch says nothing about a full one
    expect(p.batchSize).toBe(250)
    p.record(250, 10)
    expect(p.batchSize).toBe(500)
  })

  it('judges each push against its own scaled timeout', () => {
    const p = pacer(500, 1000, 10)
    // 500 changes: timeout 6000 ms; 2500 ms is under half of it, so the size stays.
    p.record(500, 2500)
    expect(p.batchSize).toBe(500)
    p.record(500, 3100)
    expect(p.batchSize).toBe(250)
  })

  it('never goes below pushBatchSize when that is under the minimum', () => {
    const p = pacer(10, 1000, 0)
    p.record(10, 900)
    expect(p.batchSize).toBe(10)
  })
})
