/**
 * The demo's own socket events, beside tidesync's protocol: presence and the activity feed.
 * Types only, shared by the server and the browser app.
 */
import type { ActivityAction } from './schema.js'

/** One open window of someone, as the presence list shows it. */
export interface PresenceEntry {
  /** Unique per window (server id + socket id). */
  id: string
  name: string
  /** Which demo server the window is connected to (several can share one Redis). */
  server: string
}

/** An activity entry on the wire (dates as ISO strings). */
export interface ActivityEntry {
  id: string
  at: string
  who: string
  action: ActivityAction
  noteUid: string
  noteTitle: string
}

/** What the server tells the browser about itself. */
export interface ServerInfo {
  /** A short id of the demo server the window talks to. */
  server: string
  database: 'pglite' | 'postgres'
  coordinator: 'memory' | 'redis'
}

export interface DemoServerEvents {
  'demo:presence': (online: PresenceEntry[]) => void
  'demo:activity': (entries: ActivityEntry[]) => void
  'demo:info': (info: ServerInfo) => void
}

export interface DemoClientEvents {
  /** The latest activity entries, newest first. */
  'demo:recent-activity': (ack: (entries: ActivityEntry[]) => void) => void
  /** Changes this window's display name. */
  'demo:rename': (name: string) => void
}

/** The display name a browser sends in the socket handshake (`auth.name`). */
export function cleanName(raw: unknown): string {
  const name = typeof raw === 'string' ? raw.replace(/\s+/g, ' ').trim().slice(0, 40) : ''
  return name || 'Someone'
}
