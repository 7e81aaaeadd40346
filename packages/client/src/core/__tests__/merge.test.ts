import type { RecordWithMeta } from '@tidesync/protocol'
import { describe, expect, it } from 'vitest'
import { modelOptions, schema } from '../../__tests__/helpers/schema.js'
import { emptyMeta, type MetaRow } from '../db/rows.js'
import { mergeServerState } from '../merge.js'
import { readSchema } from '../schema/model.js'

const [todos] = readSchema(schema, modelOptions)
const T0 = '2026-01-01T00:00:00.000Z'
const clock = (s: number, node = 'srv') => `2026-01-01T00:00:0${s}.000Z-0000-${node}`

function server(
  record: Record<string, unknown>,
  rev: number,
  clocks: Record<string, string>,
  deleted?: string,
): RecordWithMeta {
  return {
    record: {
      uid: 'u1',
      title: 't',
      done: false,
      projectId: 'p',
      likes: 0,
      dueAt: null,
      tags: null,
      ...record,
    } as never,
    meta: { created_at: T0, updated_at: T0, deleted_at: deleted ?? null, rev, clocks },
  }
}

function meta(changes: Partial<MetaRow>): MetaRow {
  return { ...emptyMeta('u1'), rev: 1, created_at: T0, updated_at: T0, ...changes }
}

describe('mergeServerState', () => {
  const row = { uid: 'u1', title: 'local', done: true, projectId: 'p', likes: 5, dueAt: null, tags: null }

  it('keeps a pending local field whose clock is newer, takes the others', () => {
    const stored = meta({ pending: { title: clock(5, 'me') }, clocks: { title: clock(5, 'me') } })
    const result = mergeServerState(
      todos!,
      server({ title: 'server', done: false }, 2, { title: clock(3), done: clock(4) }),
      row,
      stored,
      false,
    )
    expect(result.row).toMatchObject({ title: 'local', done: false })
    expect(result.meta?.rev).toBe(2)
  })

  it('lets a newer server clock win over a pending local field', () => {
    const stored = meta({ pending: { title: clock(2, 'me') } })
    const result = mergeServerState(
      todos!,
      server({ title: 'server' }, 2, { title: clock(3) }),
      row,
      stored,
      false,
    )
    expect(result.row).toMatchObject({ title: 'server' })
  })

  it('shows counters as server value plus unconfirmed deltas', () => {
    const stored = meta({ base: { likes: 3 }, deltas: { likes: 2 } })
    const result = mergeServerState(todos!, server({ likes: 10 }, 2, {}), row, stored, false)
    expect(result.row).toMatchObject({ likes: 12 })
    expect(result.meta?.base).toEqual({ likes: 10 })
  })

  it('ignores older revisions and never undoes a tombstone', () => {
    expect(mergeServerState(todos!, server({}, 1, {}), row, meta({ rev: 4 }), false)).toEqual({})
    const dead = meta({ deleted_at: T0, pendingDelete: true })
    expect(mergeServerState(todos!, server({}, 9, {}), undefined, dead, false)).toEqual({})
  })

  it('turns a server deletion into a tombstone and drops the row', () => {
    const result = mergeServerState(todos!, server({}, 3, {}, T0), row, meta({}), false)
    expect(result.row).toBeNull()
    expect(result.meta?.deleted_at).toBe(T0)
  })

  it('does not add an unknown record when only known ones may change', () => {
    expect(mergeServerState(todos!, server({}, 3, {}), undefined, undefined, true)).toEqual({})
    expect(mergeServerState(todos!, server({}, 3, {}), undefined, undefined, false).row).toMatchObject({
      uid: 'u1',
    })
  })
})
