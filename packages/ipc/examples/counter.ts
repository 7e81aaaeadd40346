/**
 * A tour of @tidesync/ipc on the memory driver: counters, hashes, a lock, pub/sub and a
 * take-and-clear flush. Run it with `npm run example -w @tidesync/ipc`.
 * The same code runs on `{ driver: 'cluster' }` or `{ driver: 'redis', url }`.
 */
import { createIpc, IpcError } from '@tidesync/ipc'

const ipc = await createIpc({ driver: 'memory' })

// Counters: atomic, a missing key starts at 0.
await Promise.all(Array.from({ length: 1000 }, () => ipc.incrBy('views:post-42', 1)))
console.log('views after 1,000 concurrent increments:', await ipc.get('views:post-42'))
console.log('decrBy 10 ->', await ipc.decrBy('views:post-42', 10))

// Hashes: fields merge; hincrBy adds to one field.
await ipc.hset('post:42', { title: 'Hello', author: 'ada' })
await ipc.hset('post:42', { title: 'Hello, world' })
await ipc.hincrBy('post:42', 'likes', 3)
console.log('post:42 =', await ipc.hgetall('post:42'))

// Take-and-clear: move pending deltas aside, then read and delete them in one step.
await ipc.hincrBy('pending:likes', 'post-42', 2)
await ipc.hincrBy('pending:likes', 'post-7', 1)
if (await ipc.move('pending:likes', 'flushing:likes')) {
  await ipc.hincrBy('pending:likes', 'post-42', 1) // arrives during the "flush": kept for the next one
  console.log(
    'flushing',
    await ipc.hgetdel('flushing:likes'),
    '| still pending',
    await ipc.hgetall('pending:likes'),
  )
}

// Sets and TTLs: presence that expires.
await ipc.sadd('online', 'ada', 'grace', 'ada')
await ipc.expire('online', 30)
console.log(
  'online:',
  (await ipc.smembers('online')).sort(),
  `(expires in ~${Math.round((await ipc.pttl('online')) / 1000)} s)`,
)

// Locks: one holder at a time; withLock always releases.
const result = await ipc.withLock('flush:posts', 5, async () => {
  console.log('inside withLock; a second lock attempt gets', await ipc.lock('flush:posts', 5))
  return 'flushed'
})
console.log(
  'withLock returned',
  JSON.stringify(result),
  '| lock free again:',
  await ipc.lock('flush:posts', 5),
)
await ipc.unlock('flush:posts')

// Pub/sub: every subscriber gets each message once.
const received: unknown[] = []
const unsubscribe = await ipc.subscribe('changes', (message) => received.push(message))
await ipc.publish('changes', { model: 'post', uid: '42', op: 'update' })
await new Promise((resolve) => setTimeout(resolve, 10))
console.log('subscriber received:', received)
await unsubscribe()

// Bad input is refused with a typed error, and nothing is stored.
try {
  await ipc.set('bad', { when: new Date() } as never)
} catch (error) {
  if (error instanceof IpcError) console.log(`refused: ${error.code}: ${error.message}`)
}
console.log('"bad" stored?', (await ipc.type('bad')) !== null)

await ipc.close()
console.log('closed; done.')
