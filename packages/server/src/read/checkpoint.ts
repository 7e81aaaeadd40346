import { TidesyncValidationError } from '../errors.js'

/**
 * Checkpoints are opaque strings to clients. Inside:
 * - `r:<rev>`: everything up to server revision `rev` is known; pull the change log after it.
 * - `s:<snapRev>:<total>:<sent>:<lastUid>`: an initial load in progress (uid order), to be
 *   followed by the change log after `snapRev`.
 * - `0`: nothing is known yet (starts an initial load).
 */
export type Checkpoint =
  | { kind: 'start' }
  | { kind: 'log'; rev: number }
  | { kind: 'snapshot'; snapRev: number; total: number; sent: number; lastUid: string }

const LOG = /^r:(\d{1,16})$/
const SNAPSHOT = /^s:(\d{1,16}):(\d{1,16}):(\d{1,16}):(.{1,255})$/s

export function parseCheckpoint(value: unknown, path = 'checkpoint'): Checkpoint {
  if (value === '0') return { kind: 'start' }
  if (typeof value === 'string') {
    const log = LOG.exec(value)
    if (log) return { kind: 'log', rev: Number(log[1]) }
    const snap = SNAPSHOT.exec(value)
    if (snap) {
      return {
        kind: 'snapshot',
        snapRev: Number(snap[1]),
        total: Number(snap[2]),
        sent: Number(snap[3]),
        lastUid: snap[4]!,
      }
    }
  }
  throw new TidesyncValidationError(
    'BAD_REQUEST',
    'not a checkpoint from this server (use "0" or one from sync:full / sync:pull)',
    path,
  )
}

export function logCheckpoint(rev: number): string {
  return `r:${rev}`
}

export function snapshotCheckpoint(snapRev: number, total: number, sent: number, lastUid: string): string {
  return `s:${snapRev}:${total}:${sent}:${lastUid}`
}
