import type { Logger } from './types.js'

/** Warnings and errors to the console; debug and info are dropped. */
export const defaultLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, ...meta) => console.warn(`[tidesync] ${message}`, ...meta),
  error: (message, ...meta) => console.error(`[tidesync] ${message}`, ...meta),
}

/** A logger that says nothing (tests, benchmarks). */
export const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
