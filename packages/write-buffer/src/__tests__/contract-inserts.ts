import { describe, expect, test } from 'vitest'
import type { WriteBufferError } from '../errors.js'
import type { Harness } from './harness.js'
import { events, values } from './schema.js'

const hardStrings = [
  'plain',
  'tab\there',
  'new\nline',
  'carriage\rreturn',
  'back\\slash',
  '\\N',
  '\\.',
  'N',
  '',
  ' leading and trailing ',
  `quotes " and ' and , ;`,
  'ünïcødé ✓ 漢字 🎉',
]

/** Rows of every kind of value; the last ones set an array column (no COPY text: inserted). */
function valueRows() {
  const rows: (typeof values.$inferInsert)[] = hardStrings.map((label, i) => ({
    label,
    n: i - 5,
    big: 9_007_199_254_740_993n * BigInt(i % 2 ? 1 : -1),
    amount: `${i}.25`,
    ratio: i / 3,
    flag: i % 2 === 0,
    at: new Date(Date.UTC(2026, 0, 1, 12, i, 30, 125)),
    day: `2026-02-${String(i + 1).padStart(2, '0')}`,
    doc: { label, list: [1, 'two', null, { deep: label }], n: i / 4 },
    raw: { label, ok: true },
    ref: `0000000${i % 10}-0000-4000-8000-00000000000${i % 10}`,
    bytes: Buffer.from([0, 9, 10, 13, 92, i]),
  }))
  rows.push({ label: null, n: null, doc: null })
  rows.push({ label: 'json scalars', doc: 'just a string', raw: 3.5 })
  rows.push({ label: 'tagged', tags: ['a', 'tab\tb', 'c"d'] })
  rows.push({ label: 'after the tagged one', n: 1 })
  return rows
}

/** Inserts queued as COPY text and inserted with COPY, against the INSERT path. */
export function insertContract(h: Harness): void {
  describe('inserts: COPY and INSERT', () => {
    test('COPY and INSERT write the same values, in order (escapes, unicode, JSON, nulls, every column kind)', async () => {
      const found: Record<string, unknown[]> = {}
      for (const insertMethod of ['copy', 'insert'] as const) {
        await h.env.exec('delete from wb_values')
        const buffer = await h.open({ insertMethod })
        const t = buffer.table(values)
        const rows = valueRows()
        // One turn (one stored item per run of columns), then one at a time (one item each).
        await Promise.all(rows.map((row) => t.insert(row)))
        for (const row of rows) await t.insert(row)
        const report = await t.flush()
        expect(report).toMatchObject({ inserted: rows.length * 2, deadLettered: 0 })
        found[insertMethod] = await h.env.query(
          `select label, n, big::text, amount::text, ratio, flag, at, day::text, doc, raw::jsonb as raw,
             ref::text, encode(bytes, 'hex') as bytes, tags from wb_values order by id`,
        )
        await buffer.close()
      }
      expect(found.copy).toEqual(found.insert)
      const labels = (found.copy as { label: string | null }[]).map((r) => r.label)
      const expected = [...hardStrings, null, 'json scalars', 'tagged', 'after the tagged one']
      expect(labels).toEqual([...expected, ...expected])
      expect(found.copy?.[1]).toMatchObject({
        label: 'tab\there',
        n: -4,
        big: '9007199254740993',
        bytes: '00090a0d5c01',
        doc: { label: 'tab\there', list: [1, 'two', null, { deep: 'tab\there' }], n: 0.25 },
      })
      expect(found.copy?.[13]).toMatchObject({ doc: 'just a string', raw: 3.5 })
      expect(found.copy?.[14]).toMatchObject({ tags: ['a', 'tab\tb', 'c"d'] })
    })

    test('get() reads a row queued as COPY text as the flush will write it', async () => {
      const buffer = await h.open()
      const t = buffer.table(values)
      await t.insert({ label: 'x\ty', n: 7, big: 5n, flag: false, doc: { a: 'b\\c' }, ratio: 0.1 })
      await t.insert({ id: 100, label: 'x\ty', n: 7, big: 5n, flag: false, doc: { a: 'b\\c' }, ratio: 0.1 })
      const row = t.where(100)
      expect(await row.get('label')).toBe('x\ty')
      expect(await row.get('n')).toBe(7)
      expect(await row.get('big')).toBe(5n)
      expect(await row.get('flag')).toBe(false)
      expect(await row.get('doc')).toEqual({ a: 'b\\c' })
      expect(await row.get('ratio')).toBe(0.1)
      await t.flush()
      expect(await row.get('label')).toBe('x\ty')
      expect(await row.get('doc')).toEqual({ a: 'b\\c' })
    })

    test('a lone surrogate has no COPY text: its row goes through INSERT, where the database refuses it alone', async () => {
      const buffer = await h.open()
      const e = buffer.table(events)
      await Promise.all([
        e.insert({ kind: 'before', userId: 1 }),
        e.insert({ kind: 'bad \ud800 text', userId: 2 }),
        e.insert({ kind: 'after', userId: 3 }),
      ])
      const report = await e.flush()
      expect(report).toMatchObject({ inserted: 2, deadLettered: 1 })
      expect(h.errors.map((x: WriteBufferError) => x.code)).toContain('WB_POISON_ROW')
      // The dead letter holds what jsonb can: the lone surrogate as U+FFFD.
      expect(
        await h.env.query("select payload->>'kind' as kind from tidesync_write_buffer_dead_letters"),
      ).toEqual([{ kind: 'bad \ufffd text' }])
      expect(await h.env.query('select kind from wb_events order by id')).toEqual([
        { kind: 'before' },
        { kind: 'after' },
      ])
    })

    test('items queued by an older version (JSON rows, a bare row) still flush, in order', async () => {
      const ipc = await h.ipc()
      const buffer = await h.open({}, ipc)
      const e = buffer.table(events)
      await ipc.rpush(
        buffer.keys.pending(e.id, 'ins'),
        JSON.stringify([
          { id: 1, kind: 'old 1', userId: 1 },
          { id: 2, kind: 'old 2', userId: 2 },
        ]),
        { id: 3, kind: 'old 3', userId: 3 },
      )
      await e.insert({ id: 4, kind: 'new 4', userId: 4 })
      expect(await e.where(2).get('kind')).toBe('old 2')
      expect(await e.where(3).get('kind')).toBe('old 3')
      expect((await e.flush()).inserted).toBe(4)
      expect(await h.env.query('select id, kind from wb_events order by id')).toEqual([
        { id: 1, kind: 'old 1' },
        { id: 2, kind: 'old 2' },
        { id: 3, kind: 'old 3' },
        { id: 4, kind: 'new 4' },
      ])
    })

    test.each(['copy', 'insert'] as const)(
      'inserts (%s) run in the flush transaction change capture recognises: tidesync.capture = buffer',
      async (insertMethod) => {
        await h.env.exec(`
        create table if not exists wb_capture_seen (mode text);
        create or replace function wb_capture_note() returns trigger language plpgsql as $$
          begin insert into wb_capture_seen values (coalesce(current_setting('tidesync.capture', true), '')); return null; end $$;
        drop trigger if exists wb_capture_note on wb_events;
        create trigger wb_capture_note after insert on wb_events for each statement execute function wb_capture_note();`)
        try {
          const buffer = await h.open({ insertMethod })
          const e = buffer.table(events)
          await Promise.all([e.insert({ kind: 'a', userId: 1 }), e.insert({ kind: 'b', userId: 2 })])
          await e.flush()
          await h.env.exec(`insert into wb_events (kind, user_id) values ('direct', 3)`)
          expect(await h.env.query('select mode from wb_capture_seen')).toEqual([
            { mode: 'buffer' },
            { mode: '' },
          ])
        } finally {
          await h.env.exec(`drop trigger if exists wb_capture_note on wb_events; drop table if exists wb_capture_seen;
          drop function if exists wb_capture_note()`)
        }
      },
    )

    test('insertMethod is checked', async () => {
      await expect(h.open({ insertMethod: 'bulk' as never })).rejects.toMatchObject({
        code: 'WB_INVALID_OPTION',
      })
    })
  })
}
