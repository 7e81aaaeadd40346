import { io, type Socket } from 'socket.io-client'
import { Prng } from './prng.js'

/** What one hostile connection did and what happened to it. */
export interface HostileSocket {
  sent: number
  answered: number
  /** Why the socket was disconnected ('io server disconnect': the server cut it). */
  disconnectReason: string | null
  /** Answers received before the disconnect. */
  answeredBeforeDisconnect: number
  /** `tidesync:error` events the server sent (its warning before a disconnect), by code. */
  serverErrors: string[]
}

export interface HostileResult {
  sent: number
  /** Answers received, by error code ('result' when the server answered a result). */
  answers: Record<string, number>
  /** Bytes sent (JSON size of the payloads). */
  bytes: number
  /** One entry per connection: a hostile client reconnects each time it is cut off. */
  sockets: HostileSocket[]
  durationMs: number
}

const EVENTS = ['service', 'sync:full', 'sync:pull', 'sync:push', 'subscribe', 'unsubscribe']
const uid = (rng: Prng) =>
  `01${rng.int(0x100000, 0xffffff).toString(16)}-0000-7000-8000-${rng.int(0x10000000, 0x7fffffff).toString(16).padStart(12, '0')}`

function junk(rng: Prng, depth = 0): unknown {
  const roll = rng.next()
  if (depth > 2 || roll < 0.3)
    return rng.pick([null, true, 0, -1, 1e308, 'x', '', '__proto__', '0'.repeat(200)])
  if (roll < 0.6) return Array.from({ length: rng.int(0, 5) }, () => junk(rng, depth + 1))
  const object: Record<string, unknown> = {}
  for (let i = rng.int(0, 5); i > 0; i--)
    object[rng.pick(['model', 'where', 'uid', 'changes', 'x', 'args', 'method'])] = junk(rng, depth + 1)
  return object
}

/** One hostile message: an event and a payload that breaks a rule of the protocol. */
function hostileMessage(rng: Prng, oversizeBytes: number): [string, unknown] {
  const kind = rng.next()
  if (kind < 0.05)
    return [
      'service',
      { model: 'items', method: 'findMany', args: { where: { title: 'x'.repeat(oversizeBytes) } } },
    ]
  if (kind < 0.15) {
    const metadata: Record<string, unknown> = {}
    // Half are valid (the server reconciles 2,000 unknown records), half carry a bad date.
    const updated = rng.chance(0.5) ? '2020-01-01T00:00:00.000Z' : 'not a date'
    for (let i = 0; i < 2000; i++) {
      metadata[uid(rng)] = { created_at: '2020-01-01T00:00:00.000Z', updated_at: updated, deleted_at: null }
    }
    return ['sync:full', { model: 'items', metadata }]
  }
  if (kind < 0.3) {
    return [
      'sync:push',
      {
        clientId: 'mallory',
        changes: Array.from({ length: 50 }, (_, i) => ({
          id: `m${i}`,
          model: rng.pick(['items', 'ghosts']),
          uid: rng.chance(0.5) ? uid(rng) : 'not-a-uid',
          op: rng.pick(['create', 'update', 'delete', 'increment', 'drop']),
          data: { likes: 'many', owner: 42 },
          clock: 'yesterday',
        })),
      },
    ]
  }
  if (kind < 0.4)
    return [
      'service',
      JSON.parse(
        '{"model":"items","method":"update","args":{"uid":"x","patch":{"__proto__":{"admin":true}}}}',
      ),
    ]
  if (kind < 0.5)
    return ['subscribe', { model: 'items', where: { [rng.pick(['nope', 'title', '__proto__'])]: junk(rng) } }]
  if (kind < 0.6) return [`sync:${rng.int(0, 999)}`, junk(rng)]
  return [rng.pick(EVENTS), junk(rng)]
}

/**
 * A hostile client: connects (the test servers need no credentials) and sends malformed,
 * oversized and expensive requests as fast as the socket takes them, counting the answers. When
 * the server cuts it off, it connects again, like an attacker would, until `count` messages are
 * sent in all or `timeoutMs` has passed. Never more than one connection at a time.
 */
export async function runHostile(options: {
  url: string
  count: number
  seed: number
  oversizeBytes: number
  timeoutMs: number
}): Promise<HostileResult> {
  const rng = new Prng(options.seed)
  const result: HostileResult = { sent: 0, answers: {}, bytes: 0, sockets: [], durationMs: 0 }
  const started = Date.now()
  const deadline = started + options.timeoutMs
  while (result.sent < options.count && Date.now() < deadline) {
    const record: HostileSocket = {
      sent: 0,
      answered: 0,
      disconnectReason: null,
      answeredBeforeDisconnect: 0,
      serverErrors: [],
    }
    result.sockets.push(record)
    const socket: Socket = io(options.url, { transports: ['websocket'], reconnection: false, forceNew: true })
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve())
        socket.once('connect_error', reject)
      })
      socket.on('tidesync:error', (error: { code?: string }) => record.serverErrors.push(String(error?.code)))
      const disconnected = new Promise<void>((resolve) =>
        socket.once('disconnect', (reason) => {
          record.disconnectReason = reason
          record.answeredBeforeDisconnect = record.answered
          resolve()
        }),
      )
      for (let i = 0; result.sent < options.count && socket.connected && Date.now() < deadline; i++) {
        const [event, payload] = hostileMessage(rng, options.oversizeBytes)
        result.bytes += JSON.stringify(payload)?.length ?? 0
        result.sent++
        record.sent++
        socket.emit(event, payload, (reply: { error?: { code?: string } } | undefined) => {
          record.answered++
          const code = reply?.error?.code ?? (reply && 'result' in reply ? 'result' : 'malformed')
          result.answers[code] = (result.answers[code] ?? 0) + 1
        })
        // Full speed, but let the socket flush now and then so this process does not buffer it all.
        if (i % 25 === 24) await new Promise((resolve) => setImmediate(resolve))
      }
      // Wait for the answers (or the disconnect), bounded.
      while (socket.connected && record.answered < record.sent && Date.now() < deadline) {
        await Promise.race([disconnected, new Promise((resolve) => setTimeout(resolve, 50))])
      }
    } finally {
      socket.disconnect()
    }
  }
  result.durationMs = Date.now() - started
  return result
}
