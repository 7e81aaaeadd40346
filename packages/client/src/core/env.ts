import type { Clock, Logger, Timers } from './types.js'

/** The default logger: warnings and errors to the console, nothing else. */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(message, ...meta),
  error: (message, ...meta) => console.error(message, ...meta),
}

/** The default clock: `Date.now()`. */
export const systemClock: Clock = { now: () => Date.now() }

/** The default timers: the global `setTimeout`/`clearTimeout`. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
}
