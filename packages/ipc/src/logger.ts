import type { Logger } from './types.js'

/** The default logger: warnings and errors to the console, nothing else. */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync/ipc] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync/ipc] ${message}`, ...meta),
}
