/** Every error the IPC layer throws. Check with `instanceof IpcError` and branch on `code`. */
export type IpcErrorCode =
  /** A key is not a non-empty string. */
  | 'IPC_INVALID_KEY'
  /** A value is not JSON-serialisable data that round-trips exactly. */
  | 'IPC_INVALID_VALUE'
  /** Any other bad argument: a TTL that is not a positive finite number, a delta that is not a safe integer, ... */
  | 'IPC_INVALID_ARGUMENT'
  /** The operation does not fit the type stored at the key (a hash command on a list, ...). */
  | 'IPC_WRONGTYPE'
  /** `incrBy`/`hincrBy` on a value that is not an integer, or a result outside the safe-integer range. */
  | 'IPC_NOT_INTEGER'
  /** The store could not be reached within the bound (Redis down, primary gone, request timed out). */
  | 'IPC_UNAVAILABLE'
  /** `withLock` could not take the lock within its wait bound. */
  | 'IPC_LOCK_TIMEOUT'
  /** The instance was closed. */
  | 'IPC_CLOSED'
  /** A malformed message between processes (cluster driver). */
  | 'IPC_PROTOCOL'

export class IpcError extends Error {
  override readonly name: string = 'IpcError'
  constructor(
    readonly code: IpcErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** A request whose outcome is unknown (it may or may not have been applied): never retried blindly. */
export class IpcUnavailableError extends IpcError {
  override readonly name = 'IpcUnavailableError'
  constructor(
    message: string,
    /** True when the request may already have been applied by the store. */
    readonly outcomeUnknown: boolean,
    options?: { cause?: unknown },
  ) {
    super('IPC_UNAVAILABLE', message, options)
  }
}
