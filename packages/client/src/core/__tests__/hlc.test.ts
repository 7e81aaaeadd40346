import { describe, expect, it } from 'vitest'
import { HlcClock, hlcIso, parseHlc } from '../hlc.js'

describe('HlcClock', () => {
  it('makes clocks in the protocol format that grow as strings', () => {
    let now = Date.parse('2026-11-23T13:45:12.345Z')
    const clock = new HlcClock('c7f3a9', () => now)
    const a = clock.tick()
    expect(a).toBe('2026-11-23T13:45:12.345Z-0000-c7f3a9')
    const b = clock.tick()
    expect(b).toBe('2026-11-23T13:45:12.345Z-0001-c7f3a9')
    now -= 10_000 // the wall clock goes backwards: the HLC does not
    const c = clock.tick()
    expect(c > b).toBe(true)
    now += 20_000
    const d = clock.tick()
    expect(d > c).toBe(true)
    expect(hlcIso(d)).toBe(new Date(now).toISOString())
  })

  it('moves past an observed clock from a node whose time is ahead', () => {
    const clock = new HlcClock('aaaaaa', () => Date.parse('2026-01-01T00:00:00.000Z'))
    const server = '2026-01-01T00:05:00.000Z-0007-server1'
    clock.observe(server)
    const next = clock.tick()
    expect(next > server).toBe(true)
    expect(parseHlc(next)).toEqual({
      wall: Date.parse('2026-01-01T00:05:00.000Z'),
      counter: 8,
      node: 'aaaaaa',
    })
  })

  it('ignores malformed clocks and borrows a millisecond when the counter is full', () => {
    const clock = new HlcClock('n1', () => 0)
    clock.observe('garbage')
    clock.observe('1970-01-01T00:00:00.000Z-ffff-zz')
    const next = clock.tick()
    expect(next).toBe('1970-01-01T00:00:00.001Z-0000-n1')
  })
})
