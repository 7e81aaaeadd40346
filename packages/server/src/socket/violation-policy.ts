import { errorPolicy, type WireError } from '@tidesync/protocol'

/**
 * When a socket is disconnected for sending invalid requests. Occasional errors (a client of an
 * older schema, a bug in one request) never reach the limit; a socket sending garbage at speed
 * reaches it within a moment.
 */
export interface ViolationPolicyOptions {
  /** Violations within `windowMs` that disconnect the socket. @default 20 */
  maxViolations?: number
  /** The sliding window the violations are counted in, in ms. @default 10000 */
  windowMs?: number
}

/** The policy with its defaults applied. @internal */
export interface ViolationPolicy {
  maxViolations: number
  windowMs: number
}

/**
 * True when an error answer counts as a boundary violation of the socket that caused it: its
 * code's `violation` in the protocol's `ERROR_CODES` (the request was invalid at the boundary,
 * or came past the socket's request queue; refusals of well-formed requests and the server's
 * own failures do not count).
 */
export function isViolation(error: WireError): boolean {
  return errorPolicy(error.code).violation
}

/** `false` turns the policy off. @internal */
export function resolveViolationPolicy(
  options: ViolationPolicyOptions | false | undefined,
): ViolationPolicy | null {
  if (options === false) return null
  return {
    maxViolations: Math.max(1, options?.maxViolations ?? 20),
    windowMs: Math.max(1, options?.windowMs ?? 10_000),
  }
}

/**
 * One socket's violations in a sliding window. Keeps at most `maxViolations` timestamps, so a
 * socket costs the same memory however much it sends.
 */
export class ViolationCounter {
  private readonly times: number[] = []

  constructor(
    private readonly policy: ViolationPolicy,
    private readonly now: () => number,
  ) {}

  /** Records a violation; true when the socket reached the limit. */
  record(): boolean {
    const now = this.now()
    this.times.push(now)
    while (this.times.length > this.policy.maxViolations) this.times.shift()
    while (this.times.length > 0 && this.times[0]! <= now - this.policy.windowMs) this.times.shift()
    return this.times.length >= this.policy.maxViolations
  }

  /** Violations within the window, as of the last one recorded. */
  get count(): number {
    return this.times.length
  }
}

/** The `tidesync:error` a socket gets before the server disconnects it. */
export function tooManyViolations(policy: ViolationPolicy, last: WireError, event: string): WireError {
  return {
    code: 'TOO_MANY_VIOLATIONS',
    message: `${policy.maxViolations} invalid requests within ${policy.windowMs} ms (the last: ${last.code} on ${JSON.stringify(event.slice(0, 64))}): disconnecting`,
  }
}
