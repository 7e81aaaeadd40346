/**
 * The wire's error codes, each with its policy: the one table that says which codes refuse a
 * single change of a push, which count as violations of the socket that caused them, and which
 * are worth retrying unchanged. PROTOCOL.md section 6 is the same table for people.
 */

/** What a code means for the sender and for the server. */
export interface ErrorPolicy {
  /**
   * In a `sync:push`, the code refuses only the change that caused it (a `rejected` outcome: the
   * client drops that change, the others apply). Any other code fails the whole push, which the
   * client sends again later.
   */
  readonly rejectsChange: boolean
  /**
   * The request was invalid at the boundary (its shape, model, method or event, columns,
   * values, keys or size) or ignored the socket's request queue: it counts against the socket's
   * violation limit (PROTOCOL.md section 12). Refusals of well-formed requests and the server's
   * own failures do not: a normal client meets them in normal use.
   */
  readonly violation: boolean
  /** The same request may succeed later unchanged: the default of `WireError.retryable`. */
  readonly retryable: boolean
}

const refusal = { rejectsChange: true, violation: true, retryable: false } as const
const none = { rejectsChange: false, violation: false, retryable: false } as const

/** Every wire error code and its policy. */
export const ERROR_CODES = Object.freeze({
  /** The payload's shape is wrong (missing field, wrong type, not an object). */
  BAD_REQUEST: refusal,
  UNKNOWN_MODEL: refusal,
  UNKNOWN_METHOD: refusal,
  /** A column in `where`, data or a patch that the model does not have. */
  UNKNOWN_COLUMN: refusal,
  /** A value of the wrong type for its column. */
  INVALID_TYPE: refusal,
  INVALID_DATE: refusal,
  /** `__proto__`, `constructor` or `prototype` used as a key. */
  FORBIDDEN_KEY: refusal,
  /** A metadata dictionary, batch or message over the configured size. */
  PAYLOAD_TOO_LARGE: refusal,
  /** No or bad credentials. */
  UNAUTHORIZED: none,
  /** Outside the caller's scope, or refused by `canWrite`. */
  FORBIDDEN: { rejectsChange: true, violation: false, retryable: false },
  NOT_FOUND: { rejectsChange: true, violation: false, retryable: false },
  /** The checkpoint is unknown or too old: run a full reconcile. */
  CHECKPOINT_EXPIRED: none,
  /** A temporary failure (database or IPC unreachable): retry later. */
  UNAVAILABLE: { rejectsChange: false, violation: false, retryable: true },
  INTERNAL: none,
  /**
   * The socket has more requests in flight than the server handles and queues per socket
   * (`retryable`): wait for answers before sending more. Counts as a violation (PROTOCOL.md
   * section 12).
   */
  TOO_MANY_REQUESTS: { rejectsChange: false, violation: true, retryable: true },
  /**
   * Only in `tidesync:error`: the socket sent too many invalid requests in a short time and is
   * being disconnected (see PROTOCOL.md section 12).
   */
  TOO_MANY_VIOLATIONS: none,
} as const satisfies Record<string, ErrorPolicy>)

/** A wire error code: the keys of `ERROR_CODES`. */
export type ErrorCode = keyof typeof ERROR_CODES

export interface WireError {
  code: ErrorCode
  message: string
  /** True when the same request may succeed later unchanged. */
  retryable?: boolean
}

/** True for the codes of this protocol version (a newer server may send others). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/**
 * The policy of a code. A code this version does not know (from a newer server) gets the most
 * careful reading: it refuses nothing on its own, is no violation and is not retried.
 */
export function errorPolicy(code: string): ErrorPolicy {
  return isErrorCode(code) ? ERROR_CODES[code] : none
}
