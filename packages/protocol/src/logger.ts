/**
 * Where the tidesync libraries send what they have to say. Each library's default writes
 * warnings and errors to the console and drops debug and info.
 */
export interface Logger {
  debug(message: string, ...meta: unknown[]): void
  info(message: string, ...meta: unknown[]): void
  warn(message: string, ...meta: unknown[]): void
  error(message: string, ...meta: unknown[]): void
}
