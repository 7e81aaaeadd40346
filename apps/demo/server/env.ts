/**
 * How the demo reads where it listens from the environment, shared by `npm run demo`
 * (server/main.ts) and `npm run demo:sql` (server/sql-cli.ts), so the second finds the first.
 */

/** The port when `PORT` is unset. */
export const DEFAULT_PORT = 3000

/** `PORT` as a number (0 = a free port); throws a sentence when it is not a port. */
export function parsePort(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_PORT
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a number from 0 to 65535, not ${JSON.stringify(value)}`)
  }
  return port
}

/**
 * The host a program on this machine connects to when the demo listens on `HOST`: 127.0.0.1
 * when it listens everywhere (or `HOST` is unset), else `HOST` itself (IPv6 in brackets).
 */
export function connectHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}
