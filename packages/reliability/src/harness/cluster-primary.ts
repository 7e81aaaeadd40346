/**
 * A node:cluster primary that owns the cluster IPC store and forks tidesync server workers
 * (server-process.ts with the cluster driver), all listening on one shared port (the primary
 * hands connections out round robin). Started by `ClusterProcess.start` (child_process.fork).
 *
 * It relays the test's requests to a worker (`worker` field) and the workers' reports back,
 * reports worker exits, and forks replacement workers on request. Env: RELIABILITY_SERVER (the
 * workers' `ServerConfig`, with a fixed port) and RELIABILITY_WORKERS (how many to fork).
 */
import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import { ClusterIpc } from '@tidesync/ipc'
import { TS_EXEC_ARGV } from './child.js'
import { isRel, type Report, type Request, type ServerConfig } from './messages.js'

const config = JSON.parse(process.env.RELIABILITY_SERVER ?? 'null') as ServerConfig | null
if (!config) throw new Error('RELIABILITY_SERVER is not set')
const count = Number(process.env.RELIABILITY_WORKERS ?? '2')
const send = (message: Report) => process.send?.(message)

cluster.setupPrimary({
  exec: fileURLToPath(new URL('./server-process.ts', import.meta.url)),
  execArgv: TS_EXEC_ARGV,
  silent: false,
})
// The primary's own instance: it owns the store the workers talk to (created before forking).
const ipc = await ClusterIpc.create({ driver: 'cluster' })

function fork(): Promise<{ worker: number; pid: number }> {
  const worker: Worker = cluster.fork({ RELIABILITY_SERVER: JSON.stringify(config) })
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (!isRel(message)) return
      const report = message as Report
      if (report.type === 'ready') {
        worker.off('message', onMessage)
        resolve({ worker: worker.id, pid: report.pid })
      } else if (report.type === 'fatal') {
        worker.off('message', onMessage)
        reject(new Error(`worker ${worker.id}: ${report.error}`))
      }
    }
    worker.on('message', onMessage)
    worker.on('message', (message: unknown) => {
      if (isRel(message) && (message as Report).type === 'reply')
        send({ ...(message as Report), worker: worker.id } as Report)
    })
    worker.once('exit', (code, signal) =>
      send({ rel: true, type: 'worker-exit', worker: worker.id, pid: worker.process.pid ?? 0, code, signal }),
    )
  })
}

process.on('message', (message: unknown) => {
  if (!isRel(message)) return
  const request = message as Request
  const reply = (result: unknown, error?: unknown) =>
    send({
      rel: true,
      type: 'reply',
      id: request.id,
      result,
      error: error === undefined ? undefined : String(error),
    })
  if (request.worker !== undefined) {
    const worker = cluster.workers?.[request.worker]
    if (!worker || worker.isDead()) reply(null, `no live worker ${request.worker}`)
    else worker.send(request)
    return
  }
  if (request.type === 'fork') {
    fork().then(reply, (error) => reply(null, error))
  } else if (request.type === 'close') {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead())
    Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) => {
            w.once('exit', resolve)
            w.send({ rel: true, type: 'close', id: -1 })
            setTimeout(() => w.process.kill('SIGKILL'), 10_000).unref()
          }),
      ),
    )
      .then(() => ipc.close())
      .then(() => {
        reply(null)
        setImmediate(() => process.exit(0))
      })
  } else reply(null, `the primary does not handle ${request.type}`)
})

// Workers die with their primary (a SIGKILLed primary cannot tell them: they notice the channel).
try {
  const workers: Array<{ worker: number; pid: number }> = []
  for (let i = 0; i < count; i++) workers.push(await fork())
  send({ rel: true, type: 'ready', port: config.port, pid: process.pid, workers })
} catch (error) {
  send({ rel: true, type: 'fatal', error: String(error) })
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
  setTimeout(() => process.exit(1), 50)
}
