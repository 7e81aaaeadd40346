/**
 * The protocol-level load: the pushing clients, spread over the servers, and the open-loop
 * streams that drive them (pushes, pulls, fan-out updates) for one window.
 */
import { Prng } from '../harness/prng.js'
import type { Fanout } from './fanout.js'
import type { Ledger } from './ledger.js'
import { LoadClient } from './load-client.js'
import { LoadMetrics, type LoadSummary } from './metrics.js'
import type { CapacityOptions } from './options.js'
import { Pacer, type Stream } from './pacer.js'

export class Load {
  readonly clients: LoadClient[] = []
  private pacer: Pacer | undefined
  private unsent = 0

  constructor(
    private readonly urls: string[],
    private readonly ledger: Ledger,
    private readonly options: CapacityOptions,
  ) {}

  /** Connects (and subscribes) every client, 50 at a time, client i to server i mod n. */
  async connect(): Promise<void> {
    const { clients, seed, inFlight } = this.options
    for (let first = 0; first < clients; first += 50) {
      const batch = Array.from({ length: Math.min(50, clients - first) }, (_, k) => {
        const index = first + k
        return new LoadClient({
          index,
          url: this.urls[index % this.urls.length]!,
          user: `u${index}`,
          group: `g${index % 16}`,
          owner: `u${index}`,
          ledger: this.ledger,
          maxInFlight: inFlight,
          seed,
        })
      })
      await Promise.all(batch.map((client) => client.connect()))
      if (this.options.subscribe) await Promise.all(batch.map((client) => client.subscribe()))
      this.clients.push(...batch)
    }
  }

  /**
   * Offers `rate` pushes/s (and the pulls and fan-out updates of the options) for `seconds`,
   * then waits up to `drainSeconds` for the answers; requests still queued then are dropped
   * (counted as unsent). Returns what was measured.
   */
  async run(
    rate: number,
    seconds: number,
    fanout: Fanout | undefined,
  ): Promise<LoadSummary & { unsent: number }> {
    const metrics = new LoadMetrics()
    const rng = new Prng(this.options.seed * 7919 + Math.round(rate))
    const n = this.clients.length
    const streams: Stream[] = [
      {
        rate: n > 0 ? rate : 0,
        fire: (k, at) => {
          const size = this.options.batched > 0 && rng.chance(this.options.batched) ? this.options.batch : 1
          this.clients[k % n]!.push(size, at, metrics)
        },
      },
      {
        rate: n > 0 ? this.options.pullRate : 0,
        fire: (k, at) => this.clients[(k * 7 + 3) % n]!.pull(at, metrics),
      },
      { rate: fanout ? this.options.fanoutRate : 0, fire: (k, at) => fanout?.fire(k, at) },
    ]
    this.pacer = new Pacer(streams)
    const run = this.pacer.run(seconds * 1000)
    metrics.startedAt = this.pacer.startedAt
    await run
    metrics.stoppedAt = performance.now()
    const deadline = performance.now() + this.options.drainSeconds * 1000
    while (this.backlog(fanout) > 0 && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 25))
    let unsent = 0
    for (const client of this.clients) unsent += client.dropQueued()
    this.unsent += unsent
    return { ...metrics.summary(), unsent }
  }

  private backlog(fanout: Fanout | undefined): number {
    return this.clients.reduce((sum, client) => sum + client.backlog, 0) + (fanout?.backlog ?? 0)
  }

  /** Requests still unanswered (after `run` timed out its drain). */
  get unanswered(): number {
    return this.clients.reduce((sum, client) => sum + client.backlog, 0)
  }

  get liveMessages(): number {
    return this.clients.reduce((sum, client) => sum + client.liveMessages, 0)
  }

  get disconnects(): number {
    return this.clients.reduce((sum, client) => sum + client.disconnects, 0)
  }

  close(): void {
    this.pacer?.stop()
    for (const client of this.clients) client.close()
  }
}
