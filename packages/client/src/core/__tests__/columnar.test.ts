import type { ColumnarRecords, PullResult, RecordWithMeta } from '@tidesync/protocol'
import { describe, expect, it } from 'vitest'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { TidesyncServerError } from '../errors.js'
import { readSchema } from '../schema/model.js'
import { decodeServerRecord } from '../schema/record-codec.js'
import { upsertsOf } from '../sync/columnar.js'

const model = readSchema(schema, modelOptions).find((m) => m.key === 'todos')!
const page = (columns: unknown): PullResult =>
  ({
    upserts: [],
    columns,
    deletes: [],
    evictions: [],
    checkpoint: 'r:1',
    hasMore: false,
    remaining: 1,
    serverClock: '',
  }) as never

const T = '2025-03-01T10:00:00.000Z'
const records: RecordWithMeta[] = [
  {
    record: {
      uid: 'u1',
      title: 'dated',
      done: true,
      projectId: 'p',
      likes: 3,
      dueAt: T,
      tags: ['a', { b: 1 }],
    } as never,
    meta: { created_at: T, updated_at: T, deleted_at: null, rev: 4, clocks: { title: 'c1', likes: 'c1' } },
  },
  {
    record: {
      uid: 'u2',
      title: 'nulls',
      done: false,
      projectId: 'p',
      likes: null,
      dueAt: null,
      tags: null,
    } as never,
    meta: { created_at: T, updated_at: T, deleted_at: null, rev: 0, clocks: {} },
  },
  {
    record: {
      uid: 'u3',
      title: 'same clocks',
      done: false,
      projectId: 'q',
      likes: 0,
      dueAt: T,
      tags: { k: 'v' },
    } as never,
    meta: { created_at: T, updated_at: T, deleted_at: null, rev: 5, clocks: { title: 'c1', likes: 'c1' } },
  },
]

/** The records as a server sends them with `format: 'columns'` (columns in another order, one unknown). */
function columnar(): ColumnarRecords {
  const columns = ['title', 'uid', 'tags', 'likes', 'serverOnly', 'dueAt', 'done', 'projectId']
  const clocks: Array<Record<string, string>> = [{ title: 'c1', likes: 'c1' }, {}]
  return {
    columns,
    rows: records.map((r) =>
      columns.map((c) => (c === 'serverOnly' ? 'x' : ((r.record as never)[c] ?? null))),
    ),
    meta: records.map((r) => [
      r.meta.created_at,
      r.meta.updated_at,
      r.meta.deleted_at,
      r.meta.rev,
      Object.keys(r.meta.clocks).length ? 0 : 1,
    ]),
    clocks,
  }
}

describe('columnar pull pages', () => {
  it('decode to the same local rows and metadata as the records of a records page', () => {
    const decoded = upsertsOf(model, page(columnar()))
    expect(decoded).toHaveLength(3)
    decoded.forEach((item, i) => {
      expect(decodeServerRecord(model, item)).toEqual(decodeServerRecord(model, records[i]!))
      expect(item.meta).toEqual(records[i]!.meta)
    })
    expect(decodeServerRecord(model, decoded[0]!)).toEqual({
      uid: 'u1',
      title: 'dated',
      done: true,
      projectId: 'p',
      likes: 3,
      dueAt: new Date(T),
      tags: ['a', { b: 1 }],
    })
    // A null counter counts as 0, as a records page's does.
    expect(decodeServerRecord(model, decoded[1]!)).toMatchObject({ likes: 0, dueAt: null, tags: null })
    // A records page passes through.
    expect(upsertsOf(model, { ...page(undefined), upserts: records })).toBe(records)
  })

  it('refuse a malformed page with a TidesyncServerError naming what is wrong', () => {
    const good = columnar()
    const tuple = good.meta[0]!
    const cases: Array<[string, unknown, RegExp]> = [
      ['not an object', 'columns', /not an object/],
      ['rows missing', { ...good, rows: undefined }, /must be arrays/],
      ['clocks not an array', { ...good, clocks: {} }, /must be arrays/],
      ['a column name not a string', { ...good, columns: [...good.columns.slice(0, -1), 7] }, /column name/],
      [
        'no uid column',
        { ...good, columns: good.columns.map((c) => (c === 'uid' ? 'id' : c)) },
        /no uid column/,
      ],
      ['fewer metadata tuples than rows', { ...good, meta: good.meta.slice(1) }, /3 rows but 2/],
      ['a row not an array', { ...good, rows: [good.rows[0], 'x', good.rows[2]] }, /row 1/],
      [
        'a short row',
        { ...good, rows: [good.rows[0]!.slice(1), ...good.rows.slice(1)] },
        /row 0 does not have 8/,
      ],
      [
        'a row without a string uid',
        { ...good, rows: good.rows.map((r) => r.map((v) => (v === 'u3' ? 3 : v))) },
        /row 2 has no string uid/,
      ],
      [
        'a clock index out of range',
        { ...good, meta: [[...tuple.slice(0, 4), 2], ...good.meta.slice(1)] },
        /tuple 0/,
      ],
      [
        'a revision that is not a number',
        { ...good, meta: [[tuple[0], tuple[1], null, '4', 0], ...good.meta.slice(1)] },
        /tuple 0/,
      ],
      ['a short tuple', { ...good, meta: [tuple.slice(0, 3), ...good.meta.slice(1)] }, /tuple 0/],
      [
        'a date that is not a string',
        { ...good, meta: [[1, tuple[1], null, 4, 0], ...good.meta.slice(1)] },
        /tuple 0/,
      ],
      ['a clock map that is not an object', { ...good, clocks: [good.clocks[0], null] }, /clock map/],
    ]
    for (const [what, columns, message] of cases) {
      let error: unknown
      try {
        upsertsOf(model, page(columns))
      } catch (e) {
        error = e
      }
      expect(error, what).toBeInstanceOf(TidesyncServerError)
      const serverError = error as TidesyncServerError
      expect(serverError.code, what).toBe('INTERNAL')
      expect(serverError.operation, what).toBe('sync:pull')
      expect(serverError.retryable, what).toBe(true)
      expect(serverError.message, what).toMatch(/^Malformed columnar page from the server: /)
      expect(serverError.message, what).toMatch(message)
    }
  })
})
