import type { Logger } from './types.js'

/**
 * Warnings and errors to the console, prefixed `[tidesync/server]`; debug and info are dropped.
 * The prefix is added here, as every tidesync package's default logger adds its own: messages
 * never carry one, so a logger of your own gets them bare.
 */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync/server] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync/server] ${message}`, ...meta),
}

/** A logger that says nothing (tests, benchmarks). */
export const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
