import type { Json } from '@tidesync/ipc'
import { describe, expect, test } from 'vitest'
import { copyLines, decodeCopyRow, encodeCopyRows, textStorable } from '../store/copy-text.js'
import { decodeInsertItem, encodeInsertItems, runRows } from '../store/insert-items.js'
import { TableMeta } from '../store/table-meta.js'
import { values } from './schema.js'

const meta = new TableMeta(values, 'default', undefined, 'id')

/** A small deterministic PRNG (mulberry32), so a failure is reproducible. */
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = [
  'a',
  'Z',
  '0',
  ' ',
  '\t',
  '\n',
  '\r',
  '\\',
  'N',
  '.',
  '"',
  "'",
  ',',
  'é',
  '漢',
  '🎉',
  '\u0001',
]

function randomString(random: () => number): string {
  let text = ''
  const length = Math.floor(random() * 12)
  for (let i = 0; i < length; i++) text += ALPHABET[Math.floor(random() * ALPHABET.length)]
  return text
}

function randomJson(random: () => number, depth = 0): Json {
  const pick = Math.floor(random() * (depth > 2 ? 4 : 6))
  if (pick === 0) return null
  if (pick === 1) return random() < 0.5
  if (pick === 2) return Math.round((random() - 0.5) * 1e6) / 100
  if (pick === 3) return randomString(random)
  if (pick === 4) return Array.from({ length: Math.floor(random() * 3) }, () => randomJson(random, depth + 1))
  return Object.fromEntries(
    Array.from({ length: Math.floor(random() * 3) }, () => [
      randomString(random),
      randomJson(random, depth + 1),
    ]),
  )
}

/** Driver JSON of a row of `wb_values` (what codec.ts makes of the inputs), nulls included. */
function randomRow(random: () => number): Record<string, Json> {
  const maybe = <T extends Json>(value: T): T | null => (random() < 0.15 ? null : value)
  return {
    label: maybe(randomString(random)),
    n: maybe(Math.floor((random() - 0.5) * 2 ** 31)),
    big: maybe(String(BigInt(Math.floor((random() - 0.5) * 2 ** 53)) * 1000n)),
    amount: maybe((random() * 1000).toFixed(2)),
    ratio: maybe((random() - 0.5) * 1e10),
    flag: maybe(random() < 0.5),
    at: maybe(new Date(Math.floor(random() * 2e12)).toISOString()),
    day: maybe('2026-03-04'),
    doc: randomJson(random),
    raw: randomJson(random),
    ref: maybe('123e4567-e89b-42d3-a456-426614174000'),
  }
}

describe('COPY text of queued rows', () => {
  const keys = ['label', 'n', 'big', 'amount', 'ratio', 'flag', 'at', 'day', 'doc', 'raw', 'ref']
  const columns = keys.map((key) => meta.column(key))

  test('rows read back from COPY text exactly as they went in (1,000 random rows)', () => {
    const random = prng(20261205)
    const rows = Array.from({ length: 1000 }, () => randomRow(random))
    expect(textStorable(columns)).toBe(true)
    const text = encodeCopyRows(columns, keys, rows)
    expect(text).not.toBeNull()
    const lines = copyLines(text as string)
    expect(lines).toHaveLength(rows.length)
    expect(lines.map((line) => decodeCopyRow(columns, keys, line))).toEqual(rows)
  })

  test('a lone surrogate has no COPY text; custom and array columns are not kept as text', () => {
    expect(encodeCopyRows([meta.column('label')], ['label'], [{ label: 'a\ud800' }])).toBeNull()
    expect(textStorable([meta.column('bytes')])).toBe(false)
    expect(textStorable([meta.column('tags')])).toBe(false)
  })

  test('a turn of rows becomes items in order: COPY text per run of columns, JSON rows where text cannot hold them', () => {
    const rows: Record<string, Json>[] = [
      { label: 'a', n: 1 },
      { n: 2, label: 'b' },
      { label: 'c', tags: ['x'] },
      { label: 'd\ud800' },
      { label: 'e' },
      {},
    ]
    const items = encodeInsertItems(meta, rows, true)
    expect(items.map((item) => item[0])).toEqual(['#', '['])
    const runs = items.flatMap((item) => decodeInsertItem(item))
    expect(runs.flatMap((run) => runRows(meta, run))).toEqual(rows)
    expect(encodeInsertItems(meta, rows, false)).toEqual([JSON.stringify(rows)])
  })
})
