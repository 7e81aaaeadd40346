import { describe, expect, it } from 'vitest'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { TidesyncValidationError } from '../errors.js'
import { readSchema } from '../schema/model.js'
import { matchesWhere, normalizeWhere } from '../where.js'

const [todos] = readSchema(schema, modelOptions)

describe('where', () => {
  it('normalizes to wire form with a canonical key', () => {
    const a = normalizeWhere(todos!, { projectId: 'p1', done: false })
    const b = normalizeWhere(todos!, { done: false, projectId: 'p1' })
    expect(a.key).toBe(b.key)
    const due = new Date('2026-01-01T00:00:00.000Z')
    expect(normalizeWhere(todos!, { dueAt: { gte: due } }).wire).toEqual({
      dueAt: { gte: '2026-01-01T00:00:00.000Z' },
    })
    expect(normalizeWhere(todos!, undefined)).toEqual({ wire: {}, key: '{}' })
  })

  it('refuses unknown columns with a typed error', () => {
    expect(() => normalizeWhere(todos!, { nope: 1 })).toThrow(TidesyncValidationError)
  })

  it('matches equality, null, membership and ranges like SQL', () => {
    const row = {
      uid: 'u',
      title: 't',
      done: false,
      projectId: 'p1',
      likes: 3,
      dueAt: new Date('2026-02-01T00:00:00Z'),
      tags: null,
    }
    const match = (where: Record<string, unknown>) =>
      matchesWhere(todos!, normalizeWhere(todos!, where).wire, row)
    expect(match({ projectId: 'p1' })).toBe(true)
    expect(match({ projectId: 'p2' })).toBe(false)
    expect(match({ tags: null })).toBe(true)
    expect(match({ projectId: { in: ['p0', 'p1'] } })).toBe(true)
    expect(match({ likes: { gte: 3, lt: 4 } })).toBe(true)
    expect(match({ likes: { gt: 3 } })).toBe(false)
    expect(match({ dueAt: { gte: new Date('2026-01-01T00:00:00Z') } })).toBe(true)
    expect(match({ dueAt: { lt: new Date('2026-01-01T00:00:00Z') } })).toBe(false)
    expect(match({ dueAt: new Date('2026-02-01T00:00:00Z') })).toBe(true)
  })
})
