/**
 * The messages between cluster workers and the primary: discriminated unions on `type`, each
 * envelope tagged with `__tidesync_ipc` so other messages on the same IPC channel (the app's,
 * other libraries') are ignored.
 *
 * Both directions are batched: a worker sends every request made in one tick as one
 * `requests` envelope; the primary answers with one `replies` envelope per worker that also
 * carries pub/sub deliveries.
 * @internal
 */
import type { CommandName } from '../../commands.js'
import type { IpcErrorCode } from '../../errors.js'

export const MARK = '__tidesync_ipc'
export const PROTOCOL_VERSION = 1

/** Worker -> primary: one store command, or a change of this worker's subscriptions. */
export type WorkerRequest =
  | { type: 'command'; id: number; name: CommandName; args: unknown[] }
  | { type: 'subscribe'; id: number; channel: string }
  | { type: 'unsubscribe'; id: number; channel: string }
  | { type: 'publish'; id: number; channel: string; payload: string }

/** Primary -> worker: the answer to one request, or a message for the worker's subscribers. */
export type PrimaryItem =
  | { type: 'ok'; id: number; value?: unknown }
  | { type: 'error'; id: number; code: IpcErrorCode; message: string }
  | { type: 'message'; channel: string; payload: string }

export type WorkerEnvelope = { [MARK]: typeof PROTOCOL_VERSION; type: 'requests'; requests: WorkerRequest[] }
export type PrimaryEnvelope = { [MARK]: typeof PROTOCOL_VERSION; type: 'replies'; items: PrimaryItem[] }

/** True when `message` belongs to this protocol (whatever its shape: it may still be malformed). */
export function isTagged(message: unknown): message is Record<string, unknown> {
  return typeof message === 'object' && message !== null && MARK in message
}

export const ERROR_CODES: ReadonlySet<string> = new Set<IpcErrorCode>([
  'IPC_INVALID_KEY',
  'IPC_INVALID_VALUE',
  'IPC_INVALID_ARGUMENT',
  'IPC_WRONGTYPE',
  'IPC_NOT_INTEGER',
  'IPC_UNAVAILABLE',
  'IPC_LOCK_TIMEOUT',
  'IPC_CLOSED',
  'IPC_PROTOCOL',
])
