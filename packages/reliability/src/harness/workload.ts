import { Prng } from './prng.js'
import { idle, type OpKind, type SimClient, type UidPool } from './sim-client.js'

export interface WorkloadOptions {
  /** How long clients keep writing, in ms. */
  durationMs: number
  /** Seed of every random decision (each client gets seed + index). */
  seed: number
  /** Pause between two writes of one client, in ms. @default [10, 60] */
  thinkMs?: [number, number]
  /** How long a client stays online before it goes offline, in ms. @default [1500, 5000] */
  onlineMs?: [number, number]
  /** How long a client stays offline, in ms. @default [300, 1500] */
  offlineMs?: [number, number]
  /** Clients that never go offline (their indexes). @default none */
  alwaysOnline?: number[]
  /** Clients the workload leaves alone (a fault drives them). @default none */
  excluded?: number[]
  /**
   * Keeps writing past `durationMs` until this settles (the fault is over), so faults always
   * happen under load; never longer than 4 x `durationMs`.
   */
  until?: Promise<unknown>
}

export interface WorkloadResult {
  ops: number
  byKind: Record<OpKind | 'skipped', number>
  durationMs: number
  /** Times a client went offline on purpose. */
  offlineSwitches: number
  /** Writes that failed (must stay 0: local writes never need the network). */
  failures: string[]
}

/**
 * Every client writes at random (creates, edits, deletes, increments) and goes online and
 * offline at random, until `durationMs` has passed. Decisions come from a seeded PRNG; the
 * exact interleaving depends on timing, which is why the end state is checked against what the
 * clients recorded rather than against a fixed expectation.
 */
export async function runWorkload(
  clients: SimClient[],
  pool: UidPool,
  options: WorkloadOptions,
): Promise<WorkloadResult> {
  const started = Date.now()
  let deadline = started + options.durationMs
  const hardStop = started + 4 * options.durationMs
  let faultOver = options.until === undefined
  options.until?.then(
    () => (faultOver = true),
    () => (faultOver = true),
  )
  const writing = () => {
    if (Date.now() < deadline) return true
    if (faultOver || Date.now() >= hardStop) return false
    deadline = Math.min(hardStop, Date.now() + 250)
    return true
  }
  const think = options.thinkMs ?? [10, 60]
  const onlineMs = options.onlineMs ?? [1500, 5000]
  const offlineMs = options.offlineMs ?? [300, 1500]
  const byKind: WorkloadResult['byKind'] = { create: 0, update: 0, increment: 0, delete: 0, skipped: 0 }
  const failures: string[] = []
  let offlineSwitches = 0

  const drive = async (client: SimClient) => {
    const rng = new Prng(options.seed * 1000 + client.index)
    const pinned = options.alwaysOnline?.includes(client.index) ?? false
    let online = true
    let toggleAt = Date.now() + rng.int(onlineMs[0], onlineMs[1])
    while (writing()) {
      if (!pinned && Date.now() >= toggleAt) {
        online = !online
        if (online) client.client.goOnline()
        else {
          client.client.goOffline()
          offlineSwitches++
        }
        const [min, max] = online ? onlineMs : offlineMs
        toggleAt = Date.now() + rng.int(min, max)
      }
      try {
        byKind[await client.step(rng, pool)]++
      } catch (error) {
        if (failures.length < 20) failures.push(`${client.name}: ${(error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, rng.int(think[0], think[1])))
    }
  }
  await Promise.all(clients.filter((client) => !options.excluded?.includes(client.index)).map(drive))
  const durationMs = Date.now() - started
  const ops = byKind.create + byKind.update + byKind.increment + byKind.delete
  return { ops, byKind, durationMs, offlineSwitches, failures }
}

/**
 * Brings every client online and waits, through each client's `status$`, until all are idle
 * (connected, not syncing, outbox empty); then each runs one more sync (`syncNow`: push and pull
 * every subset) so that live pushes missed while offline are caught up, and waits for idle
 * again. Temporary errors (a server restarting, UNAVAILABLE) are retried until `timeoutMs`.
 * Returns how long it took.
 */
export async function quiesce(clients: SimClient[], timeoutMs: number): Promise<number> {
  const started = Date.now()
  const deadline = started + timeoutMs
  const left = () => Math.max(1000, deadline - Date.now())
  for (const client of clients) client.client.goOnline()
  await Promise.all(clients.map((client) => client.waitStatus(idle, left(), 'idle')))
  for (const client of clients) {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.client.syncNow()
        break
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`${client.name}: final sync failed: ${(error as Error).message}`)
        await client.waitStatus((s) => s.online, left(), 'online')
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)))
      }
    }
  }
  await Promise.all(clients.map((client) => client.waitStatus(idle, left(), 'idle after the final sync')))
  return Date.now() - started
}
