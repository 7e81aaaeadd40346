import { afterAll } from 'vitest'
import { inProcessPeers, runIpcContract } from '../../testing/index.js'
import { MemoryIpc } from './memory-ipc.js'

// One process: every instance the suite makes is a peer of one root (same store and bus), and
// the "multi-process" tests run as concurrent callers on separate instances in this process.
const root = new MemoryIpc()
afterAll(() => root.close())

runIpcContract('memory', async () => root.createPeer(), {
  spawnPeers: (count) => inProcessPeers(count, () => root.createPeer()),
})
