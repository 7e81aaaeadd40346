import { tryOnScopeDispose } from '@vueuse/core'
import { type Ref, ref, shallowRef } from 'vue'
import type { ActivityEntry, PresenceEntry, ServerInfo } from '../../shared/events.js'
import type { DemoSocket } from '../sync/connection.js'

const KEEP = 30

export interface UseDemoFeedReturn {
  connected: Ref<boolean>
  online: Ref<PresenceEntry[]>
  activity: Ref<ActivityEntry[]>
  info: Ref<ServerInfo | null>
  /** This window's presence id, once connected. */
  selfId: Ref<string | null>
}

/**
 * Presence, the activity feed and the server's description, from the demo's own socket events.
 * On every (re)connect the recent activity is fetched again; live entries are added on top.
 */
export function useDemoFeed(socket: DemoSocket): UseDemoFeedReturn {
  const connected = ref(socket.connected)
  const online = shallowRef<PresenceEntry[]>([])
  const activity = shallowRef<ActivityEntry[]>([])
  const info = shallowRef<ServerInfo | null>(null)
  const selfId = ref<string | null>(null)

  const add = (entries: ActivityEntry[]) => {
    const byId = new Map(activity.value.map((entry) => [entry.id, entry]))
    for (const entry of entries) byId.set(entry.id, entry)
    activity.value = [...byId.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, KEEP)
  }
  const onConnect = () => {
    connected.value = true
    socket.emit('demo:recent-activity', add)
  }
  const onDisconnect = () => {
    connected.value = false
    online.value = []
  }
  const onInfo = (next: ServerInfo) => {
    info.value = next
    selfId.value = `${next.server}:${socket.id}`
  }
  const onPresence = (next: PresenceEntry[]) => {
    online.value = next
  }

  socket.on('connect', onConnect)
  socket.on('disconnect', onDisconnect)
  socket.on('demo:info', onInfo)
  socket.on('demo:presence', onPresence)
  socket.on('demo:activity', add)
  if (socket.connected) onConnect()

  tryOnScopeDispose(() => {
    socket.off('connect', onConnect)
    socket.off('disconnect', onDisconnect)
    socket.off('demo:info', onInfo)
    socket.off('demo:presence', onPresence)
    socket.off('demo:activity', add)
  })
  return { connected, online, activity, info, selfId }
}
