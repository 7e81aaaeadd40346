import { KeyedMutex } from './keyed-mutex.js'

/** The longest `clientId` the push validation accepts (PROTOCOL.md section 10). */
const MAX_CLIENT_ID_LENGTH = 200

/**
 * Runs the `sync:push` requests of one socket, and of one `clientId` across the sockets of this
 * process, one at a time in the order they arrive. A client that resends a push whose answer
 * is late (its request timed out) then waits for the first copy instead of applying the same
 * changes next to it: the resend finds them applied and answers `duplicate` quickly.
 *
 * Locks are taken socket first, then clientId; a holder of a clientId never waits for a
 * socket, so no two pushes can wait for each other.
 */
export class PushSerializer {
  private readonly mutex = new KeyedMutex()

  /** Sockets and clientIds with a push running or waiting. */
  get size(): number {
    return this.mutex.size
  }

  /** Waits for the earlier pushes of the socket and of the payload's clientId; returns the release. */
  async acquire(socketId: string, payload: unknown): Promise<() => void> {
    const clientId = clientIdOf(payload)
    // The place in line on the socket is taken now (synchronously), so arrival order holds.
    const releaseSocket = await this.mutex.acquire(`socket\u0000${socketId}`)
    if (clientId === undefined) return releaseSocket
    const releaseClient = await this.mutex.acquire(`client\u0000${clientId}`)
    return () => {
      releaseClient()
      releaseSocket()
    }
  }
}

/** The push's `clientId` when it could be valid; a malformed push is refused without a lock of it. */
function clientIdOf(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined
  const clientId = (payload as { clientId?: unknown }).clientId
  return typeof clientId === 'string' && clientId.length > 0 && clientId.length <= MAX_CLIENT_ID_LENGTH
    ? clientId
    : undefined
}
