import type { Logger } from '../types.js'

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

/**
 * On SIGTERM/SIGINT: run `shutdown` (the buffer's final flush) once, then, when nobody else
 * listens for the signal, re-raise it so the process ends as it would have without us.
 * Applications that close their database or IPC on the signal themselves should call
 * `buffer.close()` first (or pass `handleSignals: false` and do it in their own handler).
 * Returns the function that removes the handlers.
 */
export function handleShutdownSignals(shutdown: () => Promise<void>, logger: Logger): () => void {
  let fired = false
  const handler = (signal: NodeJS.Signals) => {
    remove()
    if (fired) return
    fired = true
    shutdown()
      .catch((error) => logger.error('final flush on signal failed', error))
      .finally(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
      })
  }
  const remove = () => {
    for (const signal of SIGNALS) process.removeListener(signal, handler)
  }
  for (const signal of SIGNALS) process.prependListener(signal, handler)
  return remove
}
