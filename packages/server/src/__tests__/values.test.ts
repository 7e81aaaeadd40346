import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { TidesyncValidationError } from '../errors.js'
import { canonicalDate, parseDate } from '../model/values.js'

describe('canonicalDate (the fast path of metadata dictionaries)', () => {
  it('reads every toISOString() form exactly', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0100-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (date) => {
          expect(canonicalDate(date.toISOString())?.getTime()).toBe(date.getTime())
        },
      ),
      { numRuns: 500 },
    )
  })

  it('accepts only what parseDate accepts, with the same value', () => {
    const near = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 999 }),
      )
      .map(
        ([y, mo, d, h, mi, s, ms]) =>
          `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}Z`,
      )
    fc.assert(
      fc.property(fc.oneof(near, fc.string({ maxLength: 30 })), (text) => {
        const fast = canonicalDate(text)
        let slow: Date | TidesyncValidationError
        try {
          slow = parseDate(text, 'x')
        } catch (error) {
          slow = error as TidesyncValidationError
        }
        // What the fast path accepts, the precise one accepts with the same value; what it
        // leaves, the precise one decides.
        if (fast) expect(slow).toEqual(fast)
      }),
      { numRuns: 2000 },
    )
    expect(canonicalDate('2024-02-29T00:00:00.000Z')).toEqual(new Date('2024-02-29T00:00:00.000Z'))
    expect(canonicalDate('2023-02-29T00:00:00.000Z')).toBeUndefined()
    expect(canonicalDate('2024-02-30T00:00:00.000Z')).toBeUndefined()
    expect(canonicalDate('1900-02-29T00:00:00.000Z')).toBeUndefined()
    expect(canonicalDate('2000-02-29T00:00:00.000Z')).toEqual(new Date('2000-02-29T00:00:00.000Z'))
  })
})
