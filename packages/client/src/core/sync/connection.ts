import type { ChangesPush, WireError } from '@tidesync/protocol'
import type { ClientContext } from '../context.js'
import { TidesyncClientError, TidesyncServerError } from '../errors.js'
import type { StatusStore } from '../status.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { connectSocket, type TidesyncSocket, Transport } from './transport.js'

/** What the connection tells the sync engine. @internal */
export interface ConnectionHandlers {
  /** Connected (again): every subscription is new, run a sync cycle. */
  connected(): void
  /** The connection is gone with every subscription on it. */
  disconnected(): void
  /** A live push arrived. */
  changes(push: ChangesPush): void
  /** The backoff delay after a failure passed while online, or `goOnline()` while online: sync again what needs it. */
  retry(): void
  /** An error to show (`status.error`, `errors$`). */
  report(error: TidesyncClientError): void
}

/** @internal */
export interface ConnectionOptions {
  socket: TidesyncSocket
  /** The client made the socket (and closes it); otherwise the app owns it. */
  ownsSocket: boolean
  /** Connect at start. */
  online: boolean
  requestTimeoutMs: number
  retry: BackoffOptions
}

/**
 * The socket as the sync engine sees it: online or offline (connected, and not taken offline by
 * the app), `status.online`, connect errors, the backoff between failed attempts, and the
 * requests (`transport`).
 * @internal
 */
export class Connection {
  readonly transport: Transport
  private readonly socket: TidesyncSocket
  private readonly backoff: Backoff
  private enabled: boolean
  private closed = false
  private retryTimer: unknown = null
  private readonly detach: Array<() => void> = []

  constructor(
    private readonly ctx: ClientContext,
    private readonly status: StatusStore,
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.socket = options.socket
    this.enabled = options.online
    this.backoff = new Backoff(options.retry)
    this.transport = new Transport(this.socket, ctx.timers, options.requestTimeoutMs)
  }

  /** Attaches to the socket and connects when online. */
  start(): void {
    const on = <E extends string>(event: E, handler: (...args: never[]) => void) => {
      const socket = this.socket as unknown as {
        on(e: string, h: (...a: never[]) => void): void
        off(e: string, h: (...a: never[]) => void): void
      }
      socket.on(event, handler)
      this.detach.push(() => socket.off(event, handler))
    }
    on('connect', () => this.onConnect())
    on('disconnect', () => this.onDisconnect())
    on('connect_error', (error: Error) => this.onConnectError(error))
    on('changes', (push: ChangesPush) => this.handlers.changes(push))
    on('tidesync:error', (error: WireError) =>
      this.handlers.report(
        new TidesyncServerError(error.code, error.message, error.retryable ?? false, 'connection'),
      ),
    )
    if (this.socket.connected) this.onConnect()
    else if (this.enabled) connectSocket(this.socket)
  }

  get online(): boolean {
    return this.enabled && this.socket.connected
  }

  /**
   * Connects (again). Already online, the connection and its subscriptions are kept (connecting
   * again would subscribe every subset once more on the same socket, and the server would send
   * each live change once per subscription): it only syncs what needs it (`handlers.retry`).
   */
  goOnline(): void {
    if (this.closed) return
    if (this.online) {
      this.handlers.retry()
      return
    }
    this.enabled = true
    if (this.socket.connected) this.onConnect()
    else connectSocket(this.socket)
  }

  /** Disconnects and stays offline until `goOnline()`. */
  goOffline(): void {
    this.enabled = false
    this.clearRetry()
    this.socket.disconnect()
    this.status.patch({ online: false, syncing: false, progress: null })
  }

  /** Calls `handlers.retry` after the next backoff delay (one retry at a time). */
  scheduleRetry(): void {
    if (this.retryTimer !== null || this.closed || !this.enabled) return
    const delay = this.backoff.next()
    this.retryTimer = this.ctx.timers.setTimeout(() => {
      this.retryTimer = null
      if (this.online) this.handlers.retry()
    }, delay)
  }

  /** Everything synced: the next failure waits the shortest delay again. */
  resetBackoff(): void {
    this.backoff.reset()
  }

  /** Detaches, ends every open request (`CLIENT_CLOSED`) and disconnects a socket the client made. */
  close(): void {
    this.closed = true
    this.enabled = false
    this.clearRetry()
    for (const detach of this.detach.splice(0)) detach()
    // Also ends a push kept open after its timeout when the app owns (and keeps) the socket.
    this.transport.abort(new TidesyncClientError('CLIENT_CLOSED', 'The client was closed'))
    if (this.options.ownsSocket) this.socket.disconnect()
  }

  private onConnect(): void {
    if (this.closed) return
    if (!this.enabled) {
      this.socket.disconnect()
      return
    }
    this.status.patch({ online: true })
    this.handlers.connected()
  }

  private onDisconnect(): void {
    this.status.patch({ online: false, progress: null })
    this.handlers.disconnected()
  }

  private onConnectError(error: Error): void {
    const data = (error as Error & { data?: { code?: string } }).data
    const unauthorized = data?.code === 'UNAUTHORIZED' || /unauthori[sz]ed/i.test(error.message)
    const code = unauthorized ? 'UNAUTHORIZED' : 'CLIENT_OFFLINE'
    this.ctx.logger.debug(`connect failed: ${error.message}`)
    if (unauthorized || this.status.value.error?.code !== code) {
      this.handlers.report(
        new TidesyncClientError(code, `Cannot connect: ${error.message}`, { cause: error }),
      )
    }
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) this.ctx.timers.clearTimeout(this.retryTimer)
    this.retryTimer = null
  }
}
