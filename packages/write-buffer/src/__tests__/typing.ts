/**
 * Compile-time checks of the typed API (checked by `tsc`, never run): what the drizzle table
 * allows compiles, the rest does not. Each `@ts-expect-error` fails the typecheck if the line
 * it guards compiles.
 */
import type { WriteBuffer } from '../write-buffer.js'
import { counters, events, stats } from './schema.js'

export function typedFromTheTable(buffer: WriteBuffer): void {
  const t = buffer.table(counters)
  void t.where(1).increment('views')
  void t.where(1).increment('likes', 2n)
  void t.where(1).increment('score', 3) // numeric(12,2)
  // @ts-expect-error increment() accepts numeric columns only
  void t.where(1).increment('title')
  // @ts-expect-error increment() of a jsonb column
  void t.where(1).increment('meta')
  // @ts-expect-error an unknown column
  void t.where(1).increment('nope')
  void t.where(1).update({ title: 'x', updatedAt: new Date() })
  // @ts-expect-error a value of the wrong type
  void t.where(1).update({ title: 5 })
  // @ts-expect-error an unknown column
  void t.where(1).update({ nope: 1 })
  void buffer.table(events).insert({ kind: 'view', userId: 1 })
  // @ts-expect-error insert() without a required column
  void buffer.table(events).insert({ kind: 'view' })
  void buffer.table(stats).where({ postId: 1, day: '2026-01-01' }).increment('views')
  const views: Promise<number | null> = t.where(1).get('views')
  const title: Promise<string | null> = t.where(1).get('title')
  // @ts-expect-error get() of an unknown column
  void t.where(1).get('nope')
  void views
  void title
}
