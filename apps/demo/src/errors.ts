/**
 * Errors in words a person understands. tidesync reports errors with a `code` (see
 * @tidesync/client `TidesyncErrorCode`); the demo turns each into a sentence that says what
 * happened and whether the person's changes are safe.
 */
export interface ShownError {
  /** What to tell the person. */
  text: string
  /** The code and message, for the "details" line. */
  details: string
  /** Worth showing as a warning (red) rather than as information (amber). */
  serious: boolean
}

const MESSAGES: Record<string, { text: string; serious?: boolean }> = {
  CLIENT_OFFLINE: {
    text: "Can't reach the server. Your changes are kept on this device and will be sent when the connection is back.",
  },
  CLIENT_TIMEOUT: {
    text: 'The server took too long to answer. Your changes are safe here; trying again.',
  },
  UNAVAILABLE: {
    text: "The server can't reach its database right now. Your changes are safe here; trying again shortly.",
  },
  UNAUTHORIZED: {
    text: 'The server did not let this window in. Reload the page to try again.',
    serious: true,
  },
  FORBIDDEN: { text: 'You are not allowed to make that change, so it was undone.', serious: true },
  NOT_FOUND: { text: 'That note no longer exists: someone else deleted it.' },
  CLIENT_NOT_FOUND: { text: 'That note no longer exists: someone else deleted it.' },
  CLIENT_STORAGE: {
    text: 'This browser could not store your notes (storage full, private browsing or blocked). Changes may be lost on reload.',
    serious: true,
  },
  PAYLOAD_TOO_LARGE: { text: 'That note is too large to send. Please shorten it.', serious: true },
  CLIENT_CLOSED: { text: 'The app was closed. Reload the page to continue.', serious: true },
}

const INVALID = new Set([
  'CLIENT_INVALID_TYPE',
  'CLIENT_UNKNOWN_FIELD',
  'CLIENT_MISSING_FIELD',
  'CLIENT_NOT_A_COUNTER',
  'INVALID_TYPE',
  'INVALID_DATE',
  'UNKNOWN_COLUMN',
  'BAD_REQUEST',
  'FORBIDDEN_KEY',
])

/** Describes an error for the error banner. */
export function describeError(error: unknown): ShownError {
  const code = String((error as { code?: unknown })?.code ?? 'UNKNOWN')
  const message = error instanceof Error ? error.message : String(error)
  const details = `${code}: ${message}`
  const known = MESSAGES[code]
  if (known) return { text: known.text, details, serious: known.serious ?? false }
  if (INVALID.has(code)) {
    return { text: 'That change could not be saved because a value is not valid.', details, serious: true }
  }
  return {
    text: 'Something went wrong while syncing. Your changes are safe on this device; trying again.',
    details,
    serious: true,
  }
}
