import type { Json } from '../../types.js'
import { assert, group, rejectsWith, sleep, waitFor } from './helpers.js'

/** Time for a message that should NOT arrive to show up anyway. */
const SETTLE_MS = 100

export const pubsubCases = group('pub/sub', {
  'publish reaches every subscriber exactly once, on this and other instances': async ({
    ipc,
    other,
    key,
  }) => {
    const channel = key('chan')
    const a: Json[] = []
    const b: Json[] = []
    const c: Json[] = []
    await ipc.subscribe(channel, (message) => a.push(message))
    await ipc.subscribe(channel, (message) => b.push(message))
    await other.subscribe(channel, (message) => c.push(message))
    const messages: Json[] = [{ n: 1, nested: [true, null] }, 'two', 3, null]
    for (const message of messages) await ipc.publish(channel, message)
    await other.publish(channel, 'from other')
    const expected = [...messages, 'from other']
    await waitFor(() => a.length >= 5 && b.length >= 5 && c.length >= 5, 5000, 'all deliveries')
    await sleep(SETTLE_MS)
    assert.deepStrictEqual(a, expected)
    assert.deepStrictEqual(b, expected)
    assert.deepStrictEqual(c, expected)
  },

  'handlers get the channel name and their own copy of the message': async ({ ipc, key }) => {
    const channel = key('chan:with:colons ünï')
    const seen: [Json, string][] = []
    await ipc.subscribe(channel, (message, from) => {
      seen.push([message, from])
      ;(message as { list: number[] }).list.push(99)
    })
    await ipc.subscribe(channel, (message, from) => seen.push([message, from]))
    const message = { list: [1] }
    await ipc.publish(channel, message)
    await waitFor(() => seen.length >= 2, 5000, 'deliveries')
    assert.deepStrictEqual(message, { list: [1] }, 'the publisher’s object is untouched')
    assert.equal(seen[0]![1], channel)
    assert.deepStrictEqual(seen[1], [{ list: [1] }, channel])
  },

  'delivery is asynchronous: publish never runs handlers inline': async ({ ipc, key }) => {
    const channel = key('chan')
    let delivered = 0
    await ipc.subscribe(channel, () => delivered++)
    const published = ipc.publish(channel, 1)
    assert.equal(delivered, 0)
    await published
    await waitFor(() => delivered === 1, 5000, 'the delivery')
  },

  'unsubscribe stops delivery to that handler only, and is idempotent': async ({ ipc, other, key }) => {
    const channel = key('chan')
    const kept: Json[] = []
    const dropped: Json[] = []
    const elsewhere: Json[] = []
    await ipc.subscribe(channel, (message) => kept.push(message))
    const unsubscribe = await ipc.subscribe(channel, (message) => dropped.push(message))
    const unsubscribeOther = await other.subscribe(channel, (message) => elsewhere.push(message))
    await ipc.publish(channel, 1)
    await waitFor(() => kept.length === 1 && dropped.length === 1 && elsewhere.length === 1, 5000, 'first')
    await unsubscribe()
    await unsubscribe()
    await ipc.publish(channel, 2)
    await waitFor(() => kept.length === 2 && elsewhere.length === 2, 5000, 'second')
    await unsubscribeOther()
    await other.publish(channel, 3)
    await waitFor(() => kept.length === 3, 5000, 'third')
    await sleep(SETTLE_MS)
    assert.deepStrictEqual(kept, [1, 2, 3])
    assert.deepStrictEqual(dropped, [1])
    assert.deepStrictEqual(elsewhere, [1, 2])
  },

  'a subscriber that throws does not stop the others': async ({ ipc, key }) => {
    const channel = key('chan')
    const seen: Json[] = []
    await ipc.subscribe(channel, () => {
      throw new Error('expected test error: a throwing subscriber')
    })
    await ipc.subscribe(channel, (message) => seen.push(message))
    await ipc.publish(channel, 'x')
    await waitFor(() => seen.length === 1, 5000, 'delivery to the healthy subscriber')
  },

  'channels are independent; publishing without subscribers is fine': async ({ ipc, key }) => {
    const seen: Json[] = []
    await ipc.subscribe(key('a'), (message) => seen.push(message))
    await ipc.publish(key('b'), 'not for a')
    await ipc.publish(key('nobody'), 'lost')
    await ipc.publish(key('a'), 'for a')
    await waitFor(() => seen.length === 1, 5000, 'delivery')
    await sleep(SETTLE_MS)
    assert.deepStrictEqual(seen, ['for a'])
  },

  'publish/subscribe refuse bad channels, handlers and messages': async ({ ipc, key }) => {
    await rejectsWith(() => ipc.publish('', 1), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.subscribe('', () => {}), 'IPC_INVALID_ARGUMENT')
    await rejectsWith(() => ipc.subscribe(key(), 'nope' as never), 'IPC_INVALID_ARGUMENT')
    const seen: Json[] = []
    await ipc.subscribe(key(), (message) => seen.push(message))
    await rejectsWith(() => ipc.publish(key(), { f: () => {} } as never), 'IPC_INVALID_VALUE')
    await rejectsWith(() => ipc.publish(key(), 1n as never), 'IPC_INVALID_VALUE')
    await ipc.publish(key(), 'valid')
    await waitFor(() => seen.length === 1, 5000, 'the valid message')
    await sleep(SETTLE_MS)
    assert.deepStrictEqual(seen, ['valid'])
  },
})
