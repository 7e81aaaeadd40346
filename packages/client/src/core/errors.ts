import { errorPolicy, type ErrorCode as WireErrorCode } from '@tidesync/protocol'

/**
 * Every error the client raises or reports. Check with `instanceof TidesyncClientError` and
 * branch on `code`. Errors that came from the server keep the server's code (see
 * `TidesyncServerError`); the client's own codes start with `CLIENT_`.
 */
export type ClientErrorCode =
  /** A write named a field the model does not have (or a read-only one such as `uid`). */
  | 'CLIENT_UNKNOWN_FIELD'
  /** A write carried a value of the wrong type for its column (or null for a NOT NULL column). */
  | 'CLIENT_INVALID_TYPE'
  /** A create lacks a NOT NULL column that has no default. */
  | 'CLIENT_MISSING_FIELD'
  /** `increment` on a column that is not declared as a counter, or `update` of a counter column. */
  | 'CLIENT_NOT_A_COUNTER'
  /** The record does not exist locally (or was deleted). */
  | 'CLIENT_NOT_FOUND'
  /** A record with this uid already exists locally. */
  | 'CLIENT_DUPLICATE_UID'
  /** A model that the schema does not contain. */
  | 'CLIENT_UNKNOWN_MODEL'
  /** The client options or the schema are unusable (a table without a `uid` column, ...). */
  | 'CLIENT_CONFIG'
  /** A request got no answer in time or the connection dropped before the answer. */
  | 'CLIENT_TIMEOUT'
  /**
   * A push got no answer within its timeout. Unlike `CLIENT_TIMEOUT` the push is not abandoned: it
   * stays open, its changes are not sent again on this connection, and its answer is applied
   * whenever it comes (see `TidesyncPushTimeoutError`).
   */
  | 'CLIENT_PUSH_TIMEOUT'
  /** The socket is not connected (offline). */
  | 'CLIENT_OFFLINE'
  /** The local database failed (IndexedDB quota, blocked upgrade, ...). */
  | 'CLIENT_STORAGE'
  /** The client was closed. */
  | 'CLIENT_CLOSED'

export type TidesyncErrorCode = ClientErrorCode | WireErrorCode

/** The base error of @tidesync/client. */
export class TidesyncClientError extends Error {
  override readonly name: string = 'TidesyncClientError'
  constructor(
    readonly code: TidesyncErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** A write refused at the call: unknown field, wrong type, missing field, not a counter. */
export class TidesyncValidationError extends TidesyncClientError {
  override readonly name = 'TidesyncValidationError'
  constructor(
    code: ClientErrorCode,
    message: string,
    /** The model the write was for. */
    readonly model: string,
    /** The offending field, when there is one. */
    readonly field?: string,
  ) {
    super(code, message)
  }
}

/** An error answer from the server (`{ error: { code, message } }`), or a rejected change. */
export class TidesyncServerError extends TidesyncClientError {
  override readonly name = 'TidesyncServerError'
  /**
   * True when the same request may succeed later unchanged: what the server said, or when it
   * said nothing, the code's policy (`ERROR_CODES` of @tidesync/protocol).
   */
  readonly retryable: boolean
  constructor(
    code: WireErrorCode,
    message: string,
    /** The answer's `retryable`; undefined: the code's policy. */
    retryable: boolean | undefined,
    /** What the client was doing: `sync:push`, `sync:pull`, ... */
    readonly operation: string,
    /** For a rejected change: which record and change. */
    readonly change?: { id: string; model: string; uid: string; op: string },
  ) {
    super(code, message)
    this.retryable = retryable ?? errorPolicy(code).retryable
  }
}

/**
 * A push that got no answer within its timeout (`CLIENT_PUSH_TIMEOUT`): the server is slow, not
 * necessarily gone. Reported on `errors$`/`status.error` while the push stays open: its changes
 * stay in the outbox, are not sent again while the request is open, and leave the outbox when
 * the late answer comes; only a dropped connection ends the request (the changes are then pushed
 * again after reconnecting, and the server dedupes them by change id).
 */
export class TidesyncPushTimeoutError extends TidesyncClientError {
  override readonly name = 'TidesyncPushTimeoutError'
  constructor(
    /** How many changes the open push carries. */
    readonly changes: number,
    /** The timeout that passed (`requestTimeoutMs` plus the per-change allowance). */
    readonly timeoutMs: number,
  ) {
    super(
      'CLIENT_PUSH_TIMEOUT',
      `No answer within ${timeoutMs} ms to a push of ${changes} change(s); still waiting for it (the changes are not sent again on this connection)`,
    )
  }
}

/** Wraps anything thrown into a `TidesyncClientError` (keeps the original as `cause`). */
export function toClientError(
  error: unknown,
  fallback: ClientErrorCode = 'CLIENT_STORAGE',
): TidesyncClientError {
  if (error instanceof TidesyncClientError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new TidesyncClientError(fallback, message, { cause: error })
}
