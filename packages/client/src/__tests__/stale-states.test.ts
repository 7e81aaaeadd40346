import { eq } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { idle, settle, type TestClient, testClient } from './helpers/clients.js'
import { waitFor } from './helpers/idb.js'
import { todos } from './helpers/schema.js'
import { type PushHold, startServer, type TestServer } from './helpers/server.js'

/**
 * A server's answers and live pushes do not reach a client in revision order: a pull or a full
 * reconcile is read at one moment and answered later (a live push of a newer change can come
 * first), and live pushes go out as each commit finishes its work, so a newer change can be
 * pushed before an older one (seen in `npm run capacity`: a record's delete pushed before its
 * increment). Whatever the order, a record deleted on the server must never come back on the
 * client, not even for a while: a late, older state of a record must lose to a tombstone the
 * client was told about, also when the client never held the record.
 */

let server: TestServer
const clients: TestClient[] = []
const holds: PushHold[] = []
const track = (client: TestClient) => {
  clients.push(client)
  return client
}

beforeAll(async () => {
  server = await startServer()
})
afterEach(async () => {
  for (const hold of holds.splice(0)) hold.release()
  await Promise.all(clients.splice(0).map((client) => client.close()))
})
afterAll(async () => {
  await server?.close()
})

const project = () => `p-${Math.random().toString(36).slice(2, 10)}`
const token = () => `t-${Math.random().toString(36).slice(2, 10)}`

/** A writer and an observer (who authenticates with `observer`), both keeping project `p` in sync. */
async function writerAndObserver(p: string, observer: string, options: { observerOnline?: boolean } = {}) {
  const writer = track(testClient(server))
  const reader = track(
    testClient(server, { auth: { token: observer }, online: options.observerOnline ?? true }),
  )
  let seen: string[] = []
  const subscriptions = [
    writer.collection('todos').find$({ projectId: p }).subscribe(),
    reader
      .collection('todos')
      .find$({ projectId: p }, { orderBy: 'title' })
      .subscribe((rows) => {
        seen = rows.map((row) => row.title)
      }),
  ]
  await settle(writer)
  if (options.observerOnline ?? true) await settle(reader)
  return {
    writer,
    reader,
    seen: () => seen,
    stop: () => {
      for (const subscription of subscriptions) subscription.unsubscribe()
    },
  }
}

describe('late, older states never bring back a deleted record', () => {
  it('a pull answered after the live push of a delete does not re-add the record', async () => {
    const p = project()
    const observer = token()
    const { writer, reader, seen, stop } = await writerAndObserver(p, observer)
    const uid = uuidv7()
    let tombstonesSent = 0
    // The observer never gets the record live: only from the pull below.
    holds.push(
      server.holdLive(observer, (push) => {
        if (push.deletes.some((d) => d.uid === uid)) tombstonesSent++
        return push.upserts.some((u) => u.record.uid === uid)
      }),
    )
    await writer.collection('todos').create({ uid, title: 'doomed', projectId: p })
    await settle(writer)

    // The observer pulls: the server reads the record as it is now, the answer is held.
    const answers = server.holdAnswers(observer, 'sync:pull')
    holds.push(answers)
    const pulling = reader.syncNow()
    pulling.catch(() => {}) // awaited below (an early failure must not go unhandled)
    await waitFor(() => answers.held > 0, 5000, 'the pull answered (and held)')

    // Meanwhile the record is deleted; the live tombstone overtakes the pull's answer.
    await writer.collection('todos').delete(uid)
    await writer.collection('todos').create({ title: 'marker', projectId: p })
    await settle(writer)
    await waitFor(() => seen().includes('marker'), 5000, 'the observer got the live pushes')
    expect(tombstonesSent).toBeGreaterThan(0)

    answers.release()
    await pulling
    expect(await reader.collection('todos').get(uid)).toBeUndefined()
    expect(seen()).toEqual(['marker'])
    const [row] = await server.db.select().from(todos).where(eq(todos.uid, uid))
    expect(row).toBeUndefined()
    stop()
  })

  it('a live push older than a pulled tombstone does not re-add the record for good', async () => {
    const p = project()
    const observer = token()
    const { writer, reader, seen, stop } = await writerAndObserver(p, observer)
    const uid = uuidv7()
    // The live push of the create is late: it reaches the observer after the delete.
    const late = server.holdLive(observer, (push) => push.upserts.some((u) => u.record.uid === uid))
    holds.push(late)
    await writer.collection('todos').create({ uid, title: 'doomed', projectId: p })
    await writer.collection('todos').delete(uid)
    await writer.collection('todos').create({ title: 'marker 1', projectId: p })
    await settle(writer)
    await waitFor(() => seen().includes('marker 1'), 5000, 'the observer got the delete live')
    // A pull (a reconnect, syncNow): its checkpoint now lies past the delete.
    await reader.syncNow()
    expect(late.held).toBeGreaterThan(0)

    late.release()
    await writer.collection('todos').create({ title: 'marker 2', projectId: p })
    await settle(writer)
    await waitFor(() => seen().includes('marker 2'), 5000, 'the observer got the late push')
    expect(await reader.collection('todos').get(uid)).toBeUndefined()
    // The next pull starts past the delete: it could not repair a record brought back.
    await reader.syncNow()
    expect(await reader.collection('todos').get(uid)).toBeUndefined()
    expect(seen()).toEqual(['marker 1', 'marker 2'])
    stop()
  })

  it('a full reconcile answered after the live push of a delete does not re-add the record', async () => {
    const p = project()
    const observer = token()
    const { writer, reader, seen, stop } = await writerAndObserver(p, observer, { observerOnline: false })
    // A local record and no checkpoint: the observer's first sync is a full reconcile.
    await reader.collection('todos').create({ title: 'mine', projectId: p })
    const uid = uuidv7()
    await writer.collection('todos').create({ uid, title: 'doomed', projectId: p })
    await settle(writer)

    const answers = server.holdAnswers(observer, 'sync:full')
    holds.push(answers)
    reader.goOnline()
    await waitFor(() => answers.held > 0, 5000, 'the full reconcile answered (and held)')

    await writer.collection('todos').delete(uid)
    await writer.collection('todos').create({ title: 'marker', projectId: p })
    await settle(writer)
    await waitFor(() => seen().includes('marker'), 5000, 'the observer got the live pushes')

    answers.release()
    await idle(reader)
    expect(await reader.collection('todos').get(uid)).toBeUndefined()
    expect(seen()).toEqual(['marker', 'mine'])
    await reader.syncNow()
    expect(await reader.collection('todos').get(uid)).toBeUndefined()
    stop()
  })
})
