import { describe, expect, it } from 'vitest'
import { HybridClock } from './clock.js'
import { formatHlc, hlcIso, parseHlc } from './format.js'

describe('HybridClock', () => {
  it('makes clocks in the protocol format that grow as strings', () => {
    let now = Date.parse('2026-11-23T13:45:12.345Z')
    const clock = new HybridClock('c7f3a9', () => now)
    const a = clock.now()
    expect(a).toBe('2026-11-23T13:45:12.345Z-0000-c7f3a9')
    const b = clock.now()
    expect(b).toBe('2026-11-23T13:45:12.345Z-0001-c7f3a9')
    expect(clock.last()).toBe(b)
    now -= 10_000 // the wall clock goes backwards: the HLC does not
    const c = clock.now()
    expect(c > b).toBe(true)
    now += 20_000
    const d = clock.now()
    expect(d > c).toBe(true)
    expect(hlcIso(d)).toBe(new Date(now).toISOString())
  })

  it('moves past an observed clock from a node whose time is ahead, whatever its node id', () => {
    const clock = new HybridClock('aaaaaa', () => Date.parse('2026-01-01T00:00:00.000Z'))
    const server = '2026-01-01T00:05:00.000Z-0007-Server_A'
    expect(clock.observe(server)).toBe(true)
    const next = clock.now()
    expect(next > server).toBe(true)
    expect(parseHlc(next)).toEqual({
      wallMs: Date.parse('2026-01-01T00:05:00.000Z'),
      counter: 8,
      node: 'aaaaaa',
    })
    // An older clock does not move it back.
    expect(clock.observe('2026-01-01T00:00:00.000Z-0000-b')).toBe(true)
    expect(clock.last()).toBe(next)
  })

  it('ignores malformed clocks and borrows a millisecond when the counter is full', () => {
    const clock = new HybridClock('n1', () => 0)
    expect(clock.observe('garbage')).toBe(false)
    expect(clock.observe(undefined)).toBe(false)
    expect(clock.observe(null)).toBe(false)
    expect(clock.observe('1970-01-01T00:00:00.000Z-ffff-zz')).toBe(true)
    expect(clock.now()).toBe('1970-01-01T00:00:00.001Z-0000-n1')
  })

  it('receives a writer clock unchanged, or replaced when too far ahead, and moves past it', () => {
    const now = Date.parse('2026-01-01T00:00:00.000Z')
    const clock = new HybridClock('srv', () => now, 60_000)
    const near = formatHlc(now + 30_000, 3, 'c1')
    expect(clock.receive(near)).toEqual({ clock: near, clamped: false })
    expect(clock.now() > near).toBe(true)

    const far = formatHlc(now + 120_000, 0, 'c2')
    const received = clock.receive(far)
    expect(received.clamped).toBe(true)
    expect(received.clock < far).toBe(true)
    expect(parseHlc(received.clock)?.node).toBe('srv')
    expect(() => clock.receive('garbage')).toThrow(TypeError)

    expect(clock.clampDate(new Date(now + 59_000)).getTime()).toBe(now + 59_000)
    expect(clock.clampDate(new Date(now + 61_000)).getTime()).toBe(now)
  })

  it('never clamps without a skew limit (a client clock)', () => {
    const clock = new HybridClock('c', () => 0)
    const future = formatHlc(Date.parse('2100-01-01T00:00:00.000Z'), 0, 's')
    expect(clock.receive(future)).toEqual({ clock: future, clamped: false })
    expect(clock.clampDate(new Date(future.slice(0, 24))).toISOString()).toBe('2100-01-01T00:00:00.000Z')
  })
})
