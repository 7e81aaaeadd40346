import type { Logger } from './types.js'

/**
 * The default logger: warnings and errors to the console with the package prefix, debug and
 * info dropped. The prefix is added here only: messages given to a logger never carry one.
 */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync/write-buffer] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync/write-buffer] ${message}`, ...meta),
}
