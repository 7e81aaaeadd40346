/**
 * Fan-out: many sockets subscribed to `items`, spread over the servers, all in the group `fan`;
 * one driver per server updates a record owned by `fan` at a chosen rate, each update carrying
 * its sequence number in `note`. Every subscriber should receive every update (a `changes`
 * message): the time from the update's scheduled send, and from its acknowledgement, to each
 * socket's receipt is the fan-out latency.
 */
import type { ChangesPush } from '@tidesync/server/protocol'
import { Latencies, type LatencySummary } from './latency.js'
import type { Ledger } from './ledger.js'
import { connectSocket, LoadClient, type ProtocolSocket, subscribeItems } from './load-client.js'

export const FAN_GROUP = 'fan'

export interface FanoutSummary {
  subscribers: number
  changes: number
  acknowledged: number
  /** Acknowledged changes x subscribers. */
  expectedDeliveries: number
  deliveries: number
  missing: number
  /** Scheduled send of the update -> its acknowledgement (the drivers' pushes). */
  ackMs: LatencySummary
  /** Scheduled send of the update -> each subscriber's receipt. */
  fromSendMs: LatencySummary
  /** Acknowledgement of the update -> each receipt (negative when the live push came first). */
  fromAckMs: LatencySummary
  /** Per update: scheduled send -> the last subscriber's receipt. */
  allReachedMs: LatencySummary
}

export class Fanout {
  private readonly subscribers: ProtocolSocket[] = []
  private readonly drivers: Array<{ client: LoadClient; uid: string }> = []
  private readonly sentAt: number[] = []
  private readonly ackAt: Array<number | null> = []
  private readonly receipts: Float64Array[] = []
  private deliveries = 0
  private closed = false

  constructor(
    private readonly urls: string[],
    private readonly ledger: Ledger,
    private readonly seed: number,
  ) {}

  get subscriberCount(): number {
    return this.subscribers.length
  }

  /** Connects and subscribes `count` sockets (round robin over the servers), `batch` at a time. */
  async connectSubscribers(count: number, batch = 50): Promise<void> {
    for (let first = 0; first < count; first += batch) {
      const sockets = await Promise.all(
        Array.from({ length: Math.min(batch, count - first) }, (_, k) => {
          const i = first + k
          return connectSocket(this.urls[i % this.urls.length]!, { user: `s${i}`, group: FAN_GROUP })
        }),
      )
      await Promise.all(sockets.map((socket) => subscribeItems(socket)))
      for (const socket of sockets) {
        const index = this.subscribers.length
        this.subscribers.push(socket)
        socket.on('changes', (push: ChangesPush) => this.received(index, push))
      }
    }
  }

  /** One driver per server, each with its own record owned by the group. */
  async startDrivers(): Promise<void> {
    for (const [k, url] of this.urls.entries()) {
      const client = new LoadClient({
        index: 100_000 + k,
        url,
        user: `fan-d${k}`,
        group: FAN_GROUP,
        owner: FAN_GROUP,
        ledger: this.ledger,
        seed: this.seed,
      })
      await client.connect()
      const uid = await client.createNow(`fanout-${k}`)
      this.drivers.push({ client, uid })
    }
  }

  /** Sends update number `seq` (scheduled at `at`) through the next driver. */
  fire(seq: number, at: number): void {
    const driver = this.drivers[seq % this.drivers.length]!
    this.sentAt[seq] = at
    this.ackAt[seq] = null
    this.receipts[seq] = new Float64Array(this.subscribers.length).fill(Number.NaN)
    driver.client.setNote(driver.uid, `fo:${seq}`, at, (ok, ackAt) => {
      this.ackAt[seq] = ok ? ackAt : Number.NaN
    })
  }

  private received(index: number, push: ChangesPush): void {
    const at = performance.now()
    for (const { record } of push.upserts) {
      if (record.owner !== FAN_GROUP || typeof record.note !== 'string' || !record.note.startsWith('fo:'))
        continue
      const receipts = this.receipts[Number(record.note.slice(3))]
      if (receipts && Number.isNaN(receipts[index]!)) {
        receipts[index] = at
        this.deliveries++
      }
    }
  }

  /** Updates sent and not yet acknowledged or delivered everywhere. */
  private outstanding(): number {
    let open = 0
    for (let seq = 0; seq < this.sentAt.length; seq++) {
      const ack = this.ackAt[seq]
      if (ack === null) open++
      else if (!Number.isNaN(ack) && this.receipts[seq]!.some(Number.isNaN)) open++
    }
    return open
  }

  /** Waits until every acknowledged update reached every subscriber, at most `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (this.outstanding() > 0 && performance.now() < deadline && !this.closed)
      await new Promise((resolve) => setTimeout(resolve, 50))
  }

  summary(): FanoutSummary {
    const fromSend = new Latencies()
    const fromAck = new Latencies()
    const allReached = new Latencies()
    const acks = new Latencies()
    let acknowledged = 0
    let missing = 0
    for (let seq = 0; seq < this.sentAt.length; seq++) {
      const ack = this.ackAt[seq]
      if (ack === null || ack === undefined || Number.isNaN(ack)) continue
      acknowledged++
      acks.add(ack - this.sentAt[seq]!)
      let last = 0
      let complete = true
      for (const at of this.receipts[seq]!) {
        if (Number.isNaN(at)) {
          missing++
          complete = false
          continue
        }
        fromSend.add(at - this.sentAt[seq]!)
        fromAck.add(at - ack)
        last = Math.max(last, at)
      }
      if (complete && this.subscribers.length > 0) allReached.add(last - this.sentAt[seq]!)
    }
    return {
      subscribers: this.subscribers.length,
      changes: this.sentAt.length,
      acknowledged,
      expectedDeliveries: acknowledged * this.subscribers.length,
      deliveries: this.deliveries,
      missing,
      ackMs: acks.summary(),
      fromSendMs: fromSend.summary(),
      fromAckMs: fromAck.summary(),
      allReachedMs: allReached.summary(),
    }
  }

  /** Requests of the drivers still queued or unanswered. */
  get backlog(): number {
    return this.drivers.reduce((sum, d) => sum + d.client.backlog, 0)
  }

  close(): void {
    this.closed = true
    for (const socket of this.subscribers) socket.disconnect()
    for (const driver of this.drivers) driver.client.close()
  }
}
