import type { WireError } from './errors.js'
import type {
  ChangesPush,
  FullSyncRequest,
  FullSyncResult,
  PullRequest,
  PullResult,
  PushRequest,
  PushResult,
  Reply,
  ServiceRequest,
  SubscribeRequest,
  SubscribeResult,
  UnsubscribeRequest,
} from './messages.js'
import type { RecordWithMeta, Tombstone } from './records.js'

/** The socket.io typings of the protocol, and the lists of its events and service methods. */

type Ack<T> = (reply: Reply<T>) => void

export interface ClientToServerEvents {
  service: (request: ServiceRequest, ack: Ack<RecordWithMeta | RecordWithMeta[] | Tombstone | null>) => void
  'sync:full': (request: FullSyncRequest, ack: Ack<FullSyncResult>) => void
  'sync:pull': (request: PullRequest, ack: Ack<PullResult>) => void
  'sync:push': (request: PushRequest, ack: Ack<PushResult>) => void
  subscribe: (request: SubscribeRequest, ack: Ack<SubscribeResult>) => void
  unsubscribe: (request: UnsubscribeRequest, ack: Ack<{ ok: true }>) => void
}

export interface ServerToClientEvents {
  changes: (push: ChangesPush) => void
  /**
   * Sent just before the server disconnects the socket, saying why: `TOO_MANY_VIOLATIONS`
   * (repeated invalid requests). socket.io clients do not reconnect by themselves after a
   * server-side disconnect.
   */
  'tidesync:error': (error: WireError) => void
}

/**
 * The requests that need no socket state (unlike `subscribe`/`unsubscribe`): a server answers
 * them the same way over a socket or from an HTTP route (`Tidesync.handle`).
 */
export const REQUEST_EVENTS = Object.freeze(['service', 'sync:full', 'sync:pull', 'sync:push'] as const)

/** One of `REQUEST_EVENTS`. */
export type RequestEvent = (typeof REQUEST_EVENTS)[number]

/** Every event a client may send. */
export const CLIENT_EVENTS = Object.freeze([...REQUEST_EVENTS, 'subscribe', 'unsubscribe'] as const)

/** Every event a client may send, to look up. */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set<string>(CLIENT_EVENTS)

/** The methods of the `service` request. */
export const SERVICE_METHODS = Object.freeze([
  'findUnique',
  'findMany',
  'create',
  'update',
  'delete',
] as const)

/** One of `SERVICE_METHODS`. */
export type ServiceMethod = (typeof SERVICE_METHODS)[number]

export function isServiceMethod(value: unknown): value is ServiceMethod {
  return typeof value === 'string' && (SERVICE_METHODS as readonly string[]).includes(value)
}

// The lists above and the types agree: a new event or method that is missing from one of them
// fails to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
type _ListsAgree = [
  Assert<Same<(typeof CLIENT_EVENTS)[number], keyof ClientToServerEvents>>,
  Assert<Same<ServiceMethod, ServiceRequest['method']>>,
]
