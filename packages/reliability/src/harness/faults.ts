import pg from 'pg'
import type { Deployment } from './deployment.js'
import { sleep, until } from './ports.js'
import { Prng } from './prng.js'
import type { UidPool } from './sim-client.js'
import type { SoakContext } from './soak.js'

export interface ServerKill {
  server: string
  /** Pushes in flight over every client when the signal was sent. */
  pushesInFlight: number
  /** Buffered writes the server held just before the kill (-1: unknown). */
  pendingWrites: number
  /** When the signal was sent (epoch ms). */
  at: number
  /** From SIGKILL until the process was serving again. */
  downMs: number
  /** Start-ups that failed before the restart succeeded (a supervisor would retry too). */
  failedStarts: string[]
}

/**
 * A fault for `runSoak({ during })`: `times` times, `everyMs` apart, waits (up to 2 s) for a
 * moment with pushes in flight, SIGKILLs the next server in turn, and restarts it on the same
 * port after `downMs`. Meanwhile its clients reconnect through the balancer to the other server.
 */
export function serverKiller(
  deployment: Deployment,
  options: { times: number; everyMs: number; downMs?: number },
  kills: ServerKill[],
) {
  return async ({ recorder }: SoakContext): Promise<void> => {
    for (let turn = 0; turn < options.times; turn++) {
      await sleep(options.everyMs)
      await until(() => recorder.pushesInFlight() > 0, 2000, 'a push in flight').catch(() => undefined)
      const server = deployment.servers[turn % deployment.servers.length]!
      const pendingWrites = (await server.stats().catch(() => null))?.pendingWrites ?? -1
      const inFlight = recorder.pushesInFlight()
      const killedAt = Date.now()
      await server.kill('SIGKILL')
      await sleep(options.downMs ?? 1500)
      const failedStarts = await server.restart()
      kills.push({
        server: server.name,
        pushesInFlight: inFlight,
        pendingWrites,
        at: killedAt,
        downMs: Date.now() - killedAt,
        failedStarts,
      })
    }
  }
}

export interface BatchCut {
  /** Changes in the batch the client pushed. */
  batch: number
  /** Of them, applied by the server when the connection was cut. */
  appliedAtCut: number
  /** The client's pushes still unanswered when its connection was cut. */
  pushesInFlightAtCut: number
}

/**
 * A fault for `runSoak({ during })` on one client the workload leaves alone (`excluded`): it
 * queues `batch` writes offline, goes online, and when the server has applied part of that
 * push (counted in tidesync_applied) the client's connection is cut (its transport closed, as a
 * network drop does). It reconnects by itself and pushes again. Repeated `rounds` times.
 */
export function halfwayDisconnect(options: {
  client: number
  databaseUrl: string
  batch: number
  rounds: number
  cuts: BatchCut[]
}) {
  return async ({ clients, recorder }: SoakContext): Promise<void> => {
    const sim = clients[options.client]!
    const db = new pg.Client({ connectionString: options.databaseUrl })
    await db.connect()
    try {
      const clientId = await sim.client.clientId()
      const applied = async () =>
        Number(
          (await db.query('SELECT count(*) AS n FROM tidesync_applied WHERE client_id = $1', [clientId]))
            .rows[0].n,
        )
      const rng = new Prng(4242 + options.client)
      const pool: UidPool = { items: [] }
      for (let round = 0; round < options.rounds; round++) {
        sim.client.goOffline()
        await sim.waitStatus((s) => !s.online, 5000, 'offline')
        // A first record of its own, then a batch of writes on it and on new ones.
        for (let i = 0; i < options.batch; i++) await sim.step(rng, pool)
        await sim.waitStatus((s) => s.pending > 0, 5000, 'pending writes')
        const queued = sim.status().pending
        const before = await applied()
        sim.client.goOnline()
        await until(
          async () => (await applied()) - before >= Math.ceil(queued / 4),
          30_000,
          'part of the batch applied',
          5,
        )
        const pushesInFlightAtCut = recorder.inFlight[options.client] ?? 0
        sim.socket.io.engine.close()
        const appliedAtCut = (await applied()) - before
        options.cuts.push({ batch: queued, appliedAtCut, pushesInFlightAtCut })
        await sim.waitStatus(
          (s) => s.online && !s.syncing && s.pending === 0,
          60_000,
          'batch pushed after the cut',
        )
      }
    } finally {
      await db.end()
    }
  }
}
