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

  it('matches uuids ignoring case, as the server does', () => {
    const uid = '0193e7a0-0000-7000-8000-00000000abcd'
    const row = { uid, title: 't', done: false, projectId: 'p1', likes: 0, dueAt: null, tags: null }
    const match = (where: Record<string, unknown>) =>
      matchesWhere(todos!, normalizeWhere(todos!, where).wire, row)
    expect(match({ uid: uid.toUpperCase() })).toBe(true)
    expect(match({ uid: { in: [uid.toUpperCase()] } })).toBe(true)
    expect(match({ dueAt: null })).toBe(true)
  })

  it('refuses at the call a where the protocol refuses, naming the field', () => {
    for (const where of [
      { likes: {} },
      { likes: { in: [1], gt: 0 } },
      { likes: { in: [1, null] } },
      { likes: { gte: 1, near: 2 } },
      { likes: { gte: undefined } },
    ]) {
      const error = (() => {
        try {
          normalizeWhere(todos!, where)
        } catch (e) {
          return e
        }
      })()
      expect(error, JSON.stringify(where)).toBeInstanceOf(TidesyncValidationError)
      expect(error).toMatchObject({ code: 'CLIENT_INVALID_TYPE', model: 'todos', field: 'likes' })
    }
  })

  it('keeps json conditions for local queries (the server refuses them)', () => {
    const row = { uid: 'u', title: 't', tags: ['a', 'b'] }
    expect(matchesWhere(todos!, normalizeWhere(todos!, { tags: ['a', 'b'] }).wire, row)).toBe(true)
    expect(matchesWhere(todos!, normalizeWhere(todos!, { tags: ['b'] }).wire, row)).toBe(false)
  })
})
