import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'

/** Starts a V8 CPU profile of this process; `stop(file)` writes it (open it in Chrome DevTools). */
export async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop')
      writeFileSync(file, JSON.stringify(profile))
      session.disconnect()
    },
  }
}
