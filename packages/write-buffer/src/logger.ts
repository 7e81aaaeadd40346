import type { Logger } from './types.js'

/** Warnings and errors to the console; debug and info dropped. */
export const DefaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(message, ...meta),
  error: (message, ...meta) => console.error(message, ...meta),
}
