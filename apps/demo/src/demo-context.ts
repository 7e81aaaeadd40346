import { type InjectionKey, inject, type Ref } from 'vue'
import type { DemoSocket, NotesClient } from './sync/connection.js'

/** What the app's components share besides the tidesync client (provided in main.ts). */
export interface DemoContext {
  socket: DemoSocket
  client: NotesClient
  /** This person's display name. */
  name: Ref<string>
  /** An error of a local action (a write the client refused), shown until dismissed. */
  actionError: Ref<unknown>
}

export const DEMO_KEY: InjectionKey<DemoContext> = Symbol('tidesync-demo')

export function useDemo(): DemoContext {
  const context = inject(DEMO_KEY, null)
  if (!context) throw new Error('No demo context: main.ts provides it with app.provide(DEMO_KEY, ...)')
  return context
}
