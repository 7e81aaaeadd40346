import type { Clock, Logger, Timers } from './types.js'

/**
 * The default logger: warnings and errors to the console, prefixed `[tidesync/client]`; debug
 * and info are dropped. The prefix is added here, as every tidesync package's default logger adds
 * its own: messages never carry one, so a logger of your own gets them bare.
 */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync/client] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync/client] ${message}`, ...meta),
}

/** The default clock: `Date.now()`. */
export const systemClock: Clock = { now: () => Date.now() }

/** The default timers: the global `setTimeout`/`clearTimeout`. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
}
