import { describe, expect, it } from 'vitest'
import type { ErrorCode } from '../errors.js'
import { canonicalJson } from './canonical.js'
import { comparable, comparisonOf } from './comparison.js'
import { matchesConditions, whereMatcher } from './match.js'
import { parseWhere, type WhereSchema } from './parse.js'
import type { Comparison } from './types.js'

/** Columns as drizzle names their types: what both sides pass to `comparisonOf`. */
const COLUMNS: Record<string, { columnType: string; dataType: string }> = {
  uid: { columnType: 'PgUUID', dataType: 'string' },
  title: { columnType: 'PgText', dataType: 'string' },
  done: { columnType: 'PgBoolean', dataType: 'boolean' },
  likes: { columnType: 'PgInteger', dataType: 'number' },
  dueAt: { columnType: 'PgTimestamp', dataType: 'date' },
  dueText: { columnType: 'PgTimestampString', dataType: 'string' },
  day: { columnType: 'PgDateString', dataType: 'string' },
  big: { columnType: 'PgBigInt64', dataType: 'bigint' },
  price: { columnType: 'PgNumeric', dataType: 'string' },
  tags: { columnType: 'PgJsonb', dataType: 'json' },
  list: { columnType: 'PgArray', dataType: 'array' },
}

class WhereError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly path: string,
  ) {
    super(`${path}: ${message}`)
  }
}

type Column = { name: string; columnType: string; dataType: string }

function schema(options: { jsonConditions?: boolean } = {}): WhereSchema<Column> {
  return {
    model: 'todos',
    column: (key) => (Object.hasOwn(COLUMNS, key) ? { name: key, ...COLUMNS[key]! } : undefined),
    comparison: (column) => comparisonOf(column),
    value: (_column, value) => value,
    error: (code, message, path) => new WhereError(code, message, path),
    ...options,
  }
}

function refusal(where: unknown, options: { jsonConditions?: boolean } = {}) {
  try {
    parseWhere(where, schema(options))
  } catch (error) {
    const e = error as WhereError
    return { code: e.code, message: e.message }
  }
  throw new Error(`accepted ${JSON.stringify(where)}`)
}

const match = (where: unknown, record: Record<string, unknown>, options: { jsonConditions?: boolean } = {}) =>
  matchesConditions(parseWhere(where, schema(options)), record)

describe('comparisonOf', () => {
  it('reads how a drizzle column compares from its type names', () => {
    const of = (key: string) => comparisonOf(COLUMNS[key]!)
    expect(of('dueAt')).toBe('timestamp')
    expect(of('dueText')).toBe('timestamp')
    expect(comparisonOf({ columnType: 'PgDate', dataType: 'date' })).toBe('timestamp')
    expect(comparisonOf({ columnType: 'SQLiteTimestamp', dataType: 'date' })).toBe('timestamp')
    expect(of('day')).toBe('plain')
    expect(of('big')).toBe('bigint')
    expect(of('price')).toBe('numeric')
    expect(of('uid')).toBe('uuid')
    expect(of('tags')).toBe('json')
    expect(of('list')).toBe('json')
    expect(of('title')).toBe('plain')
  })

  it('puts values in comparable form', () => {
    const cases: Array<[Comparison, unknown, unknown]> = [
      ['timestamp', '2026-01-01T00:00:00.000Z', Date.parse('2026-01-01T00:00:00.000Z')],
      ['timestamp', '2026-01-01 01:00:00+01', Date.parse('2026-01-01T00:00:00.000Z')],
      ['plain', new Date(5), 5],
      ['bigint', '9007199254740993', 9007199254740993n],
      ['bigint', 12, 12n],
      ['numeric', '10.50', 10.5],
      ['uuid', 'ABC', 'abc'],
      ['plain', { b: 1, a: [2] }, '{"a":[2],"b":1}'],
      ['plain', 'x', 'x'],
      ['plain', null, null],
      ['plain', undefined, null],
    ]
    for (const [comparison, value, expected] of cases) expect(comparable(comparison, value)).toEqual(expected)
    expect(comparable('bigint', 'not a number')).toBeNaN()
  })
})

describe('parseWhere', () => {
  it('reads equality, null, membership and ranges, leaving undefined out', () => {
    const conditions = parseWhere(
      { title: 't', done: null, likes: { in: [1, 2] }, dueAt: { gte: 'a', lt: 'b' }, day: undefined },
      schema(),
    )
    expect(conditions.map((c) => [c.kind, c.key, c.comparison])).toEqual([
      ['eq', 'title', 'plain'],
      ['null', 'done', 'plain'],
      ['in', 'likes', 'plain'],
      ['range', 'dueAt', 'timestamp'],
    ])
    expect(conditions[3]).toMatchObject({
      bounds: [
        { op: 'gte', value: 'a' },
        { op: 'lt', value: 'b' },
      ],
    })
    expect(parseWhere(undefined, schema())).toEqual([])
    expect(parseWhere(null, schema())).toEqual([])
  })

  it('refuses what PROTOCOL.md section 3 refuses, with its codes and the path', () => {
    expect(refusal([])).toEqual({ code: 'BAD_REQUEST', message: 'where: must be an object' })
    expect(refusal('x').code).toBe('BAD_REQUEST')
    expect(refusal({ nope: 1 })).toEqual({
      code: 'UNKNOWN_COLUMN',
      message: 'where.nope: model todos has no column nope',
    })
    expect(refusal({ tags: 'a' }).code).toBe('INVALID_TYPE')
    expect(refusal({ tags: null }).code).toBe('INVALID_TYPE')
    expect(refusal({ list: { in: [['a']] } }).code).toBe('INVALID_TYPE')
    expect(refusal({ likes: {} })).toEqual({
      code: 'BAD_REQUEST',
      message: 'where.likes: an empty condition',
    })
    expect(refusal({ likes: { in: [1], gt: 0 } }).code).toBe('BAD_REQUEST')
    expect(refusal({ likes: { in: 1 } })).toEqual({
      code: 'BAD_REQUEST',
      message: 'where.likes.in: `in` takes an array',
    })
    expect(refusal({ likes: { in: Array.from({ length: 1001 }, (_, i) => i) } }).code).toBe(
      'PAYLOAD_TOO_LARGE',
    )
    expect(parseWhere({ likes: { in: Array.from({ length: 1000 }, (_, i) => i) } }, schema())).toHaveLength(1)
    expect(refusal({ likes: { in: [1, null] } })).toEqual({
      code: 'INVALID_TYPE',
      message: 'where.likes.in[1]: `in` cannot hold null',
    })
    expect(refusal({ likes: { gte: 1, near: 2 } }).message).toBe(
      'where.likes: unknown operator "near" (in, gte, gt, lte, lt)',
    )
    expect(refusal({ likes: { gte: null } })).toEqual({
      code: 'INVALID_TYPE',
      message: 'where.likes.gte: the bound gte needs a value',
    })
    expect(refusal({ likes: { gte: undefined } }).code).toBe('INVALID_TYPE')
  })

  it('checks each value through the schema, with its path', () => {
    const paths: string[] = []
    const checking: WhereSchema<Column> = {
      ...schema(),
      value: (_column, value, path) => {
        paths.push(path)
        return `checked ${String(value)}`
      },
    }
    const [eq, within, range] = parseWhere(
      { title: 't', likes: { in: [1, 2] }, dueAt: { gt: 'x' } },
      checking,
    )
    expect(paths).toEqual(['where.title', 'where.likes.in[0]', 'where.likes.in[1]', 'where.dueAt.gt'])
    expect(eq).toMatchObject({ value: 'checked t' })
    expect(within).toMatchObject({ values: ['checked 1', 'checked 2'] })
    expect(range).toMatchObject({ bounds: [{ op: 'gt', value: 'checked x' }] })
  })

  it('reads json conditions for local queries when asked: objects that are no operators are values', () => {
    const options = { jsonConditions: true }
    expect(parseWhere({ tags: { a: 1 } }, schema(options))[0]).toMatchObject({ kind: 'eq', value: { a: 1 } })
    expect(parseWhere({ tags: {} }, schema(options))[0]).toMatchObject({ kind: 'eq', value: {} })
    expect(parseWhere({ tags: { in: [['a']] } }, schema(options))[0]).toMatchObject({ kind: 'in' })
    expect(parseWhere({ tags: null }, schema(options))[0]).toMatchObject({ kind: 'null' })
    expect(match({ tags: { b: [1], a: 'x' } }, { tags: { a: 'x', b: [1] } }, options)).toBe(true)
    expect(match({ tags: { a: 'y' } }, { tags: { a: 'x' } }, options)).toBe(false)
    expect(refusal({ likes: { a: 1 } }, options).code).toBe('BAD_REQUEST')
  })
})

describe('matching', () => {
  const row = {
    uid: '0193e7a0-0000-7000-8000-00000000abcd',
    title: 't',
    done: false,
    likes: 3,
    dueAt: new Date('2026-02-01T00:00:00.000Z'),
    dueText: '2026-02-01 01:00:00+01',
    day: '2026-02-01',
    big: '9007199254740993',
    price: '10.50',
    tags: null,
  }

  it('matches equality, null, membership and ranges like SQL', () => {
    expect(match({ title: 't' }, row)).toBe(true)
    expect(match({ title: 'u' }, row)).toBe(false)
    expect(match({ tags: null }, row, { jsonConditions: true })).toBe(true)
    expect(match({ title: null }, row)).toBe(false)
    expect(match({ likes: { in: [1, 3] } }, row)).toBe(true)
    expect(match({ likes: { in: [] } }, row)).toBe(false)
    expect(match({ likes: { gte: 3, lt: 4 } }, row)).toBe(true)
    expect(match({ likes: { gt: 3 } }, row)).toBe(false)
    expect(match({ title: 't', likes: 4 }, row)).toBe(false)
    expect(match({}, row)).toBe(true)
  })

  it('never matches NULL with a value, a membership or a range', () => {
    const empty = { title: null }
    expect(match({ title: 't' }, empty)).toBe(false)
    expect(match({ title: { in: ['t'] } }, empty)).toBe(false)
    expect(match({ title: { gte: '' } }, empty)).toBe(false)
    expect(match({ title: null }, {})).toBe(true)
  })

  it('compares timestamps by time, whether the record holds Dates or strings', () => {
    expect(match({ dueAt: '2026-02-01T00:00:00.000Z' }, row)).toBe(true)
    expect(match({ dueAt: { gte: '2026-01-01T00:00:00.000Z' } }, row)).toBe(true)
    expect(match({ dueAt: { lt: '2026-01-01T00:00:00.000Z' } }, row)).toBe(false)
    expect(match({ dueAt: { gte: '2026-01-31T23:00:00-01:00' } }, row)).toBe(true)
    expect(match({ dueAt: '2026-02-01T00:00:00.000Z' }, { dueAt: '2026-02-01T00:00:00.000Z' })).toBe(true)
    // A timestamp in string mode is a time too, not text: '...01:00:00+01' is midnight UTC.
    expect(match({ dueText: '2026-02-01T00:00:00.000Z' }, row)).toBe(true)
    expect(match({ dueText: { lt: '2026-01-31T23:30:00.000Z' } }, row)).toBe(false)
    // A date in string mode compares as text, which for YYYY-MM-DD is date order.
    expect(match({ day: { gte: '2026-01-31', lte: '2026-02-01' } }, row)).toBe(true)
  })

  it('compares 64-bit integers and decimals as numbers, uuids ignoring case', () => {
    expect(match({ big: '9007199254740993' }, row)).toBe(true)
    expect(match({ big: { gt: '9007199254740992' } }, row)).toBe(true)
    expect(match({ big: { lt: '10' } }, { big: '9' })).toBe(true) // '9' < '10' as numbers
    expect(match({ price: { gt: '9' } }, row)).toBe(true) // '10.50' > '9' as numbers
    expect(match({ price: '10.5' }, row)).toBe(true)
    expect(match({ uid: row.uid.toUpperCase() }, row)).toBe(true)
    expect(match({ uid: { in: [row.uid.toUpperCase()] } }, row)).toBe(true)
  })

  it('builds one matcher for many records', () => {
    const test = whereMatcher(parseWhere({ likes: { gte: 2 } }, schema()))
    expect([1, 2, 3].map((likes) => test({ likes }))).toEqual([false, true, true])
    expect(whereMatcher([])({})).toBe(true)
  })
})

describe('canonicalJson', () => {
  it('gives equal wheres one text, stable across versions (clients key stored subsets by it)', () => {
    expect(canonicalJson({ projectId: 'p1', done: false })).toBe('{"done":false,"projectId":"p1"}')
    expect(canonicalJson({ done: false, projectId: 'p1' })).toBe(
      canonicalJson({ projectId: 'p1', done: false }),
    )
    expect(canonicalJson({ dueAt: { lt: 'b', gte: 'a' }, x: { in: [2, 1] } })).toBe(
      '{"dueAt":{"gte":"a","lt":"b"},"x":{"in":[2,1]}}',
    )
    expect(canonicalJson({})).toBe('{}')
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}')
    expect(canonicalJson(undefined)).toBe('null')
  })
})
