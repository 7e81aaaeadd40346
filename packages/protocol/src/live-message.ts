import type { WireMeta, WireRecord } from './records.js'

/**
 * What one server publishes on IPC pub/sub after a commit, so that every server can push it to
 * its own sockets. Carries the record before and after the change, so each subscriber can tell
 * an upsert, a tombstone and an eviction apart for its own where+scope. Server to server only:
 * clients never see it. @internal
 */
export interface LiveMessage {
  v: 1
  model: string
  changes: LiveChange[]
}

/** @internal */
export interface LiveChange {
  uid: string
  op: 'upsert' | 'delete'
  before: WireRecord | null
  after: WireRecord | null
  meta: WireMeta
}

/** True when an IPC message has the shape of a `LiveMessage` of this version. @internal */
export function isLiveMessage(value: unknown): value is LiveMessage {
  const message = value as LiveMessage | null
  return (
    typeof message === 'object' &&
    message !== null &&
    message.v === 1 &&
    typeof message.model === 'string' &&
    Array.isArray(message.changes)
  )
}
