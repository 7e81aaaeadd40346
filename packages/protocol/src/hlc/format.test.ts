import { describe, expect, it } from 'vitest'
import {
  compareHlc,
  formatHlc,
  hlcFromDate,
  hlcIso,
  hlcWallMs,
  isHlc,
  isNodeId,
  parseHlc,
  randomNodeId,
} from './format.js'

const WALL = Date.parse('2026-11-23T13:45:12.345Z')

describe('HLC format', () => {
  it('formats and parses the protocol example', () => {
    const clock = formatHlc(WALL, 1, 'c7f3a9')
    expect(clock).toBe('2026-11-23T13:45:12.345Z-0001-c7f3a9')
    expect(parseHlc(clock)).toEqual({ wallMs: WALL, counter: 1, node: 'c7f3a9' })
    expect(hlcWallMs(clock)).toBe(WALL)
    expect(hlcIso(clock)).toBe('2026-11-23T13:45:12.345Z')
    expect(hlcFromDate(new Date(WALL), 'client')).toBe('2026-11-23T13:45:12.345Z-0000-client')
    expect(hlcFromDate(new Date(WALL))).toBe('2026-11-23T13:45:12.345Z-0000-0')
  })

  it('accepts the node ids both sides have stored: client hex, server hex, configured names', () => {
    for (const node of [randomNodeId(), randomNodeId(4), 'A', 'server_1', 'x'.repeat(32), 'client', '0']) {
      expect(isNodeId(node)).toBe(true)
      expect(parseHlc(formatHlc(WALL, 0, node))?.node).toBe(node)
    }
    expect(randomNodeId()).toMatch(/^[0-9a-f]{6}$/)
    expect(randomNodeId(4)).toMatch(/^[0-9a-f]{8}$/)
  })

  it('refuses malformed clocks, node ids outside [A-Za-z0-9_]{1,32} and dates that roll over', () => {
    for (const bad of [
      'garbage',
      '',
      '2026-11-23T13:45:12.345Z-0001-',
      '2026-11-23T13:45:12.345Z-0001-node-1',
      `2026-11-23T13:45:12.345Z-0001-${'x'.repeat(33)}`,
      '2026-11-23T13:45:12.345Z-00001-c7f3a9',
      '2026-11-23T13:45:12.345Z-000G-c7f3a9',
      '2026-11-23T13:45:12.345Z-ABCD-c7f3a9',
      '2026-11-23T13:45:12Z-0001-c7f3a9',
      '2026-02-30T00:00:00.000Z-0000-c7f3a9',
      '2026-01-01T24:00:00.000Z-0000-c7f3a9',
      '2026-13-01T00:00:00.000Z-0000-c7f3a9',
    ]) {
      expect(parseHlc(bad), bad).toBeNull()
      expect(isHlc(bad), bad).toBe(false)
    }
    expect(isHlc(42)).toBe(false)
    expect(isNodeId('node-1')).toBe(false)
    expect(isNodeId('')).toBe(false)
  })

  it('orders clocks as strings: wall time, then counter, then node', () => {
    const sorted = [
      formatHlc(WALL - 1, 0xffff, 'zz'),
      formatHlc(WALL, 0, 'b'),
      formatHlc(WALL, 1, 'a'),
      formatHlc(WALL, 1, 'b'),
      formatHlc(WALL + 1, 0, 'a'),
    ]
    for (let i = 1; i < sorted.length; i++) {
      expect(compareHlc(sorted[i - 1]!, sorted[i]!)).toBeLessThan(0)
      expect(compareHlc(sorted[i]!, sorted[i - 1]!)).toBeGreaterThan(0)
    }
    expect(compareHlc(sorted[0]!, sorted[0]!)).toBe(0)
  })
})
