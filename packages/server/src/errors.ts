import { type ErrorCode, errorPolicy, type WireError } from '@tidesync/protocol'

/**
 * Every error the server throws on purpose. `code` is the wire code the client receives, so a
 * caller can branch on it; `retryable` says the same request may succeed later unchanged (by
 * default, what the code's policy in `ERROR_CODES` says).
 *
 * @example
 * try { await tidesync.services.todos.update({ uid, patch }, ctx) }
 * catch (error) { if (error instanceof TidesyncError && error.code === 'NOT_FOUND') ... }
 */
export class TidesyncError extends Error {
  override readonly name: string = 'TidesyncError'
  readonly retryable: boolean
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.retryable = options?.retryable ?? errorPolicy(code).retryable
  }

  /** The `{ code, message }` sent over the socket (never the cause or the stack). */
  toWire(): WireError {
    return this.retryable
      ? { code: this.code, message: this.message, retryable: true }
      : { code: this.code, message: this.message }
  }
}

/**
 * True when an error refuses one change of a write for good (a push answers it `rejected` and
 * applies the others): its code's `rejectsChange` in the protocol's `ERROR_CODES`. Any other
 * error fails the whole push (the client retries it later).
 */
export function isRejection(error: TidesyncError): boolean {
  return errorPolicy(error.code).rejectsChange
}

/** A payload that fails boundary validation: nothing was written. */
export class TidesyncValidationError extends TidesyncError {
  override readonly name = 'TidesyncValidationError'
  constructor(
    code: ErrorCode,
    message: string,
    /** Where in the payload, e.g. `changes[3].patch.title`. */
    readonly path?: string,
  ) {
    super(code, path ? `${path}: ${message}` : message)
  }
}

/** The caller may not read or write this record (outside its scope, or refused by `canWrite`). */
export class TidesyncForbiddenError extends TidesyncError {
  override readonly name = 'TidesyncForbiddenError'
  constructor(message: string) {
    super('FORBIDDEN', message)
  }
}

/** A bad server configuration (unknown column in `counters`, a table without `uid`...). */
export class TidesyncConfigError extends Error {
  override readonly name = 'TidesyncConfigError'
}
