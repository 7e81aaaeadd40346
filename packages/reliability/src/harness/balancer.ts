import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP load balancer on 127.0.0.1 in front of several servers, as a deployment has one: each
 * new connection goes to the next backend (round robin); a backend that refuses the connection
 * is skipped. When a backend dies its connections drop, clients reconnect, and land on a live
 * one. WebSocket-only clients need no sticky sessions.
 */
export class Balancer {
  private next = 0
  private readonly sockets = new Set<Socket>()
  private server: Server | undefined
  /** Connections made per backend port. */
  readonly connections = new Map<number, number>()

  constructor(private backends: number[]) {}

  get url(): string {
    const address = this.server?.address()
    if (!address || typeof address !== 'object') throw new Error('balancer not listening')
    return `http://127.0.0.1:${address.port}`
  }

  setBackends(ports: number[]): void {
    this.backends = [...ports]
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.route(client))
    this.server = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  }

  private route(client: Socket): void {
    this.sockets.add(client)
    client.on('close', () => this.sockets.delete(client))
    client.on('error', () => client.destroy())
    client.pause()
    const tryBackend = (attempt: number) => {
      if (client.destroyed) return
      if (attempt >= this.backends.length) {
        client.destroy()
        return
      }
      const port = this.backends[this.next++ % this.backends.length] as number
      const upstream = createConnection({ host: '127.0.0.1', port })
      this.sockets.add(upstream)
      upstream.on('close', () => this.sockets.delete(upstream))
      const onError = () => {
        upstream.destroy()
        tryBackend(attempt + 1)
      }
      upstream.once('error', onError)
      upstream.once('connect', () => {
        upstream.off('error', onError)
        this.connections.set(port, (this.connections.get(port) ?? 0) + 1)
        upstream.on('error', () => client.destroy())
        upstream.on('close', () => client.destroy())
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
    }
    tryBackend(0)
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    const server = this.server
    this.server = undefined
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
