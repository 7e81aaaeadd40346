import type { Ipc, Json } from '@tidesync/ipc'
import type { PresenceEntry } from '../shared/events.js'

/** How often a server says "still alive", and how long the word lasts. */
const HEARTBEAT_MS = 3000
const HEARTBEAT_TTL_SECONDS = 10

export interface PresenceOptions {
  ipc: Ipc
  /** This demo server's id. */
  serverId: string
  /** Called with the whole list whenever someone comes or goes, on any server. */
  onChange: (online: PresenceEntry[]) => void
}

/**
 * Who is online, across every demo server sharing the IPC store: one IPC set holds a member
 * per open window. Each server also keeps a heartbeat key with a TTL, so the windows of a
 * server that crashed (and never said goodbye) disappear from the list within seconds.
 * Comings and goings are announced on an IPC channel; every server then sends the new list to
 * its own sockets.
 */
export class Presence {
  private readonly key = 'demo:presence'
  private readonly channel = 'demo:presence-changed'
  private timer: NodeJS.Timeout | undefined
  private unsubscribe: (() => Promise<void>) | undefined
  private readonly mine = new Set<string>()
  private lastSent = ''

  constructor(private readonly options: PresenceOptions) {}

  async start(): Promise<void> {
    await this.beat()
    // Each beat also looks at the list: the windows of a server that crashed disappear once its
    // heartbeat expires, though nobody announced it.
    this.timer = setInterval(() => {
      this.beat()
        .then(() => this.refresh(false))
        .catch(() => {})
    }, HEARTBEAT_MS)
    this.timer.unref()
    this.unsubscribe = await this.options.ipc.subscribe(this.channel, () => {
      this.refresh(true).catch(() => {})
    })
  }

  /** Adds a window. */
  async join(entry: PresenceEntry): Promise<void> {
    this.mine.add(JSON.stringify(entry))
    await this.options.ipc.sadd(this.key, JSON.stringify(entry))
    await this.announce()
  }

  /** Removes a window. */
  async leave(entry: PresenceEntry): Promise<void> {
    this.mine.delete(JSON.stringify(entry))
    await this.options.ipc.srem(this.key, JSON.stringify(entry))
    await this.announce()
  }

  /** Every open window on every live server, sorted by name. */
  async list(): Promise<PresenceEntry[]> {
    const { ipc } = this.options
    const entries = (await ipc.smembers(this.key)).map((member) => ({ member, entry: parseEntry(member) }))
    const servers = new Set(entries.flatMap(({ entry }) => (entry ? [entry.server] : [])))
    const alive = new Set<string>()
    for (const server of servers) if ((await ipc.get(this.heartbeatKey(server))) !== null) alive.add(server)
    const stale = entries
      .filter(({ entry }) => !entry || !alive.has(entry.server))
      .map(({ member }) => member)
    if (stale.length > 0) await ipc.srem(this.key, ...stale)
    return entries
      .flatMap(({ entry }) => (entry && alive.has(entry.server) ? [entry] : []))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  }

  /** Removes this server's windows and stops the heartbeat. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.unsubscribe?.()
    const { ipc } = this.options
    if (this.mine.size > 0) await ipc.srem(this.key, ...this.mine).catch(() => {})
    this.mine.clear()
    await ipc.del(this.heartbeatKey(this.options.serverId)).catch(() => {})
    await this.announce().catch(() => {})
  }

  /** Sends the list to this server's windows (when it changed, unless `always`). */
  private async refresh(always: boolean): Promise<void> {
    const online = await this.list()
    const text = JSON.stringify(online)
    if (!always && text === this.lastSent) return
    this.lastSent = text
    this.options.onChange(online)
  }

  private heartbeatKey(server: string): string {
    return `demo:server:${server}`
  }

  private async beat(): Promise<void> {
    await this.options.ipc.set(this.heartbeatKey(this.options.serverId), Date.now(), HEARTBEAT_TTL_SECONDS)
  }

  private async announce(): Promise<void> {
    await this.options.ipc.publish(this.channel, this.options.serverId as Json)
  }
}

function parseEntry(member: string): PresenceEntry | null {
  try {
    const entry = JSON.parse(member) as Partial<PresenceEntry> | null
    if (typeof entry?.id === 'string' && typeof entry.name === 'string' && typeof entry.server === 'string') {
      return { id: entry.id, name: entry.name, server: entry.server }
    }
  } catch {
    // Not ours: dropped below as stale.
  }
  return null
}
