import type { SubsetState } from '@tidesync/client'
import { tryOnScopeDispose } from '@vueuse/core'
import { computed, type Ref, ref, type ShallowRef, shallowRef, watch } from 'vue'
import type { Note } from '../../shared/schema.js'
import { markOnce } from '../perf-marks.js'
import type { NotesClient } from '../sync/connection.js'

export interface UseNotePagesOptions {
  /** Notes read at first (a screen or two), and the least the window grows by. @default 60 */
  pageSize?: number
}

export interface UseNotePagesReturn {
  /** The newest notes, newest first: the window read so far (a new array on every change). */
  notes: ShallowRef<Note[]>
  /** The window holds every note this browser has: there is nothing further down. */
  complete: Readonly<Ref<boolean>>
  /** True until the first local result and, while online, the first sync of the notes. */
  isLoading: Readonly<Ref<boolean>>
  /** A failed local read or sync of the notes, or null. */
  error: Readonly<Ref<unknown>>
  /** Makes the window hold at least `count` notes (when there are that many). */
  showAtLeast(count: number): void
}

interface Unsubscribable {
  unsubscribe(): void
}

/**
 * The notes list's data: the newest notes, a window that grows as the list is scrolled, and
 * never the whole table. The window is one live `find$` with `orderBy: '-createdAt'` and a
 * `limit`, which the client answers from its createdAt index by reading only that many rows,
 * and keeps up to date from each commit (an initial-sync page, a live change, a local write)
 * without reading it again. So the first screen shows as soon as the first page of the initial
 * sync is stored, whatever the number of notes.
 *
 * Growing the window starts a query with the larger limit; the smaller one stays on screen
 * until the larger one has its result. The limit at least doubles each time, so reading the
 * windows again costs at most about twice the notes shown in all.
 *
 * The whole set of notes is kept in sync with the server while the list is on screen
 * (`syncState$`); the window queries read local data only (`sync: false`).
 */
export function useNotePages(client: NotesClient, options: UseNotePagesOptions = {}): UseNotePagesReturn {
  const pageSize = options.pageSize ?? 60
  const collection = client.collection('notes')
  const limit = ref(pageSize)
  const notes = shallowRef<Note[]>([])
  const error = shallowRef<unknown>(null)
  const loaded = ref(false)
  /** The window on screen is the one of the current limit. */
  const current = ref(false)
  const subset = shallowRef<SubsetState | null>(null)
  const online = ref(client.status.online)

  const subscriptions: Unsubscribable[] = [
    collection.syncState$({}).subscribe({
      next: (state) => {
        subset.value = state
      },
      error: (cause: unknown) => {
        error.value = cause
      },
    }),
    client.status$.subscribe((status) => {
      online.value = status.online
    }),
  ]

  /** The window queries by generation; the one on screen and any larger one still reading. */
  const windows = new Map<number, Unsubscribable>()
  let started = 0
  let shown = 0
  watch(
    limit,
    (size) => {
      const generation = ++started
      current.value = false
      const subscription = collection
        .find$({}, { orderBy: '-createdAt', limit: size, sync: false })
        .subscribe({
          next: (rows) => {
            if (generation < shown) return
            if (generation > shown) {
              shown = generation
              for (const [older, window] of windows) {
                if (older >= generation) continue
                window.unsubscribe()
                windows.delete(older)
              }
            }
            current.value = generation === started
            notes.value = rows
            loaded.value = true
            if (rows.length > 0) markOnce('demo:first-notes')
          },
          error: (cause: unknown) => {
            error.value = cause
          },
        })
      windows.set(generation, subscription)
    },
    { immediate: true },
  )

  tryOnScopeDispose(() => {
    for (const subscription of subscriptions) subscription.unsubscribe()
    for (const window of windows.values()) window.unsubscribe()
    windows.clear()
  })

  const complete = computed(() => loaded.value && current.value && notes.value.length < limit.value)
  const isLoading = computed(() => {
    if (error.value) return false
    if (!loaded.value) return true
    const state = subset.value
    return online.value && (!state || (!state.synced && state.error === null))
  })

  return {
    notes,
    complete,
    isLoading,
    error,
    showAtLeast(count: number) {
      if (count <= limit.value || complete.value) return
      limit.value = Math.max(count, limit.value * 2, limit.value + pageSize)
    },
  }
}
