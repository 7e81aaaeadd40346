import type { Logger } from './types.js'

/**
 * The default logger: warnings and errors to the console, nothing else. It adds the package's
 * prefix, so messages never carry one themselves (one prefix policy for every package; a
 * custom logger gets the bare message and adds its own context).
 */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync/ipc] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync/ipc] ${message}`, ...meta),
}
